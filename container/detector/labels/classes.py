"""Class names to the config's class ids: an export's class is mapped by its name (stripped, case as written) to the
position of that name in the config's `classes`; any other name is refused, named."""

from __future__ import annotations

from collections.abc import Sequence

from detector.records import RecordError


class ClassMap:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.ids = {name: index for index, name in enumerate(self.names)}

    def id_of(self, name: object) -> int:
        if not isinstance(name, str) or name.strip() not in self.ids:
            raise RecordError(f"class {name!r} is not one of the config's classes ({', '.join(self.names)})")
        return self.ids[name.strip()]

    def check(self, class_id: int) -> int:
        """A class id the feature-group CSV gives: one of the config's."""
        if not 0 <= class_id < len(self.names):
            raise RecordError(f"class_id {class_id} is not one of the config's ({self.described()})")
        return class_id

    def described(self) -> str:
        return ", ".join(f"{index} {name}" for index, name in enumerate(self.names))

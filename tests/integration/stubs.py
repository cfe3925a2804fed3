"""botocore's Stubber, limited to the operations the emulator lacks: every other call still reaches moto."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber


class PartialStubber(Stubber):
    """Stubs `operations` only (queued responses, parameter and response validation as Stubber does)."""

    def __init__(self, client: Any, operations: set[str]) -> None:
        super().__init__(client)
        self.operations = operations

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        if model.name in self.operations:
            super()._assert_expected_params(model, params, context, **kwargs)  # type: ignore[misc]

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if model.name in self.operations:
            return super()._get_response_handler(model, params, context, **kwargs)  # type: ignore[misc]
        return None

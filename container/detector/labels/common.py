"""What every label reader gives: the records it read (each with where it came from in the export) and the ones it
refused, each named by file, row or object, and reason."""

from __future__ import annotations

from dataclasses import dataclass

from detector.records import Record


@dataclass(frozen=True)
class Place:
    """Where in an export a record or a refusal comes from: `where` is what a person reads ("row 3",
    "instances.json image 4"), `order` sorts them as the export lists them."""

    where: str
    order: tuple[str, int]


@dataclass(frozen=True)
class Labelled:
    place: Place
    record: Record


@dataclass(frozen=True)
class Problem:
    place: Place
    source_ref: str
    reason: str

    def __str__(self) -> str:
        return f"{self.place.where} ({self.source_ref or 'no source_ref'}): {self.reason}"


@dataclass(frozen=True)
class Read:
    """An export read: the records that go in, and the refused ones."""

    labelled: list[Labelled]
    problems: list[Problem]

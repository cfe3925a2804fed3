"""What every label reader gives: the records it read (each with where it came from in the export) and the ones it
refused, each named by file, row or object, and reason."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image as PILImage

from detector.labels.classes import ClassMap
from detector.records import Box, Record, RecordError


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


@dataclass(frozen=True)
class Image:
    source_ref: str  # the image's path under Context.images (what ingest uploads)
    width: int
    height: int
    depth: int


@dataclass(frozen=True)
class Context:
    """What a reader needs besides its export: the folder the images are under, the config's classes, the status
    the records get, and the time they get when the format has none of its own (seconds since the epoch)."""

    images: Path
    classes: ClassMap
    status: str
    now: float

    def record(self, found: Image, boxes: tuple[Box, ...], *, job: str, event_time: float | None = None) -> Record:
        """The record of an image found under `images`, its boxes, where they came from and when (default now)."""
        return Record(
            source_ref=found.source_ref,
            image_width=found.width,
            image_height=found.height,
            image_depth=found.depth,
            annotations=boxes,
            event_time=self.now if event_time is None else event_time,
            labeling_job=job,
            status=self.status,
        )


IMAGE_FOLDERS = ("", "images", "JPEGImages")


def image(images: Path, name: str, *, beside: Path | None = None) -> Image:
    """The image an export names, found under `images` (as named, or under images/ or JPEGImages/ there) or
    beside the export file; its size and depth from its header. RecordError when there is none or it is unreadable.
    """
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise RecordError(f"image {name!r}: must be a relative path inside the images folder")
    candidates = [images / folder / relative for folder in IMAGE_FOLDERS]
    if beside is not None:
        candidates.append(beside / relative)
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise RecordError(f"image {name} not found under {images}")
    try:
        with PILImage.open(found) as header:
            width, height = header.size
            depth = len(header.getbands())
    except (OSError, ValueError, PILImage.DecompressionBombError):
        raise RecordError(f"image {found}: not a readable image") from None
    try:
        source_ref = found.relative_to(images).as_posix()
    except ValueError:
        raise RecordError(f"image {found}: not under the images folder {images}") from None
    return Image(source_ref, width, height, depth)


def same_size(found: Image, width: int, height: int) -> None:
    if (found.width, found.height) != (width, height):
        raise RecordError(f"image {found.source_ref} is {found.width}x{found.height}, the labels say {width}x{height}")


def inside(box: Box, width: int, height: int) -> Box:
    """The box, if it has an area and lies within the image; RecordError naming both otherwise."""
    left, top, right, bottom = box.corners
    if box.width <= 0 or box.height <= 0 or left < 0 or top < 0 or right > width or bottom > height:
        shown = ", ".join(f"{value:g}" for value in (box.left, box.top, box.width, box.height))
        raise RecordError(f"box [left, top, width, height] = [{shown}] is not inside the {width}x{height} image")
    return box


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{name}: expected a number, got {value!r}")
    return float(value)


def positive_integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value <= 0:
        raise RecordError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def trace(kind: str, export: Path, images: Path) -> str:
    """The `labeling_job` of a record read from `export`: the format, then the export's path from the images
    folder's parent (the dataset's own name first, as `make ingest` names its S3 prefix)."""
    try:
        shown = export.resolve().relative_to(images.resolve().parent).as_posix()
    except ValueError:
        shown = export.name
    return f"{kind}:{shown}"

"""Pascal VOC XML (LabelImg, CVAT, Roboflow): one file per image, in `Annotations/` (the VOCdevkit layout) or beside
the images: `filename`, `size` (width, height, depth), and `object`s with `name` and `bndbox` (xmin, ymin, xmax,
ymax). VOC writes them 1-based; like GluonCV's VOCDetection (`_load_label`), 1 is taken off all four and the box is
[xmin, ymin, xmax, ymax] in 0-based pixels, so width = xmax - xmin: a box written from a record and read back keeps
its pixels. A box must lie in the image as GluonCV's `_validate_label` asks (0 <= xmin < xmax <= width, same for y).
An object is named `FILE object N` (N from 0, in the file's order); an image with a refused object is not ingested.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from detector import jobs
from detector.labels.common import Context, Labelled, Place, Problem, Read, image, inside, same_size, trace
from detector.records import Box, RecordError


def files(folder: Path) -> list[Path]:
    """The annotation files: Annotations/*.xml (VOCdevkit), else *.xml in the folder."""
    annotations = folder / "Annotations"
    found = sorted(annotations.glob("*.xml")) if annotations.is_dir() else []
    return found or sorted(folder.glob("*.xml"))


def _text(element: ET.Element, path: str) -> str:
    found = element.find(path)
    if found is None or not (found.text or "").strip():
        raise RecordError(f"{path}: missing")
    return (found.text or "").strip()


def _integer(element: ET.Element, path: str) -> int:
    text = _text(element, path)
    try:
        value = float(text)
    except ValueError:
        raise RecordError(f"{path}: expected a positive integer, got {text!r}") from None
    if not value.is_integer() or value <= 0:
        raise RecordError(f"{path}: expected a positive integer, got {text!r}")
    return int(value)


def _coordinate(element: ET.Element, name: str) -> float:
    text = _text(element, f"bndbox/{name}")
    try:
        return float(text) - 1
    except ValueError:
        raise RecordError(f"bndbox/{name}: expected a number, got {text!r}") from None


def box(element: ET.Element, context: Context, size: tuple[int, int]) -> Box:
    class_id = context.classes.id_of(_text(element, "name"))
    xmin, ymin, xmax, ymax = (_coordinate(element, name) for name in ("xmin", "ymin", "xmax", "ymax"))
    return inside(Box(class_id, xmin, ymin, xmax - xmin, ymax - ymin), *size)


class _File:
    def __init__(self, path: Path, root: Path, context: Context) -> None:
        self.path, self.root, self.context = path, root, context
        self.name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        self.read = Read([], [])

    def place(self, what: str, index: int = -1) -> Place:
        return Place(f"{self.name}{what}", (self.name, index))

    def run(self) -> Read:
        try:
            root = ET.parse(self.path).getroot()  # noqa: S314 (the user's own export, on their disk)
            filename = _text(root, "filename")
            size = (_integer(root, "size/width"), _integer(root, "size/height"))
        except (ET.ParseError, RecordError) as error:
            self.read.problems.append(Problem(self.place(""), "", str(error)))
            return self.read
        boxes, objects = [], list(root.iter("object"))
        for index, element in enumerate(objects):
            try:
                boxes.append(box(element, self.context, size))
            except RecordError as error:
                self.read.problems.append(Problem(self.place(f" object {index}", index), filename, str(error)))
        if len(boxes) == len(objects):
            self.record(filename, size, tuple(boxes))
        return self.read

    def record(self, filename: str, size: tuple[int, int], boxes: tuple[Box, ...]) -> None:
        try:
            found = image(self.context.images, filename, beside=self.path.parent)
            same_size(found, *size)
        except RecordError as error:
            self.read.problems.append(Problem(self.place(""), filename, str(error)))
            return
        record = self.context.record(found, boxes, job=trace("voc", self.root, self.context.images))
        self.read.labelled.append(Labelled(self.place(""), record))


def read(folder: Path, context: Context) -> Read:
    found = files(folder)
    if not found:
        raise jobs.JobError(f"{folder}: no Pascal VOC files (looked for Annotations/*.xml and *.xml)")
    read = Read([], [])
    for path in found:
        one = _File(path, folder, context).run()
        read.labelled.extend(one.labelled)
        read.problems.extend(one.problems)
    return read

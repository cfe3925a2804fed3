"""SageMaker Ground Truth bounding-box output manifests (`manifests/output/output.manifest`, JSON lines; the format
AWS documents in "Labeling job output data", sms-data-output.html, "Bounding Box Job Output"):

    {"source-ref": "s3://bucket/key.jpg",
     "<label attribute>": {"image_size": [{"width", "height", "depth"}],
                           "annotations": [{"class_id", "left", "top", "width", "height"}]},
     "<label attribute>-metadata": {"class-map": {"0": "name"}, "type": "groundtruth/object-detection",
                                    "job-name": "labeling-job/<name>", "creation-date": "2018-10-18T22:18:13.527256",
                                    "human-annotated": "yes", "objects": [{"confidence": 0.8}]}}

The label attribute is whatever the job was given: the line's one key whose `-metadata` has type
groundtruth/object-detection (a chained adjustment job adds a second: name it with `label_attribute`). A class id is
mapped through `class-map` to its name, then to the config's classes. `job-name` is the record's `labeling_job`
and `creation-date` (UTC when it names no offset) its event_time. The image is the source-ref's key under the images
folder (`aws s3 sync s3://bucket/ DIR` lays it out so); a line is named `FILE line N` (from 1), a box
`FILE line N box M` (from 0); a line with a refused box is not ingested."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector import jobs
from detector.labels import common
from detector.labels.common import Context, Labelled, Place, Problem, Read
from detector.records import Box, Record, RecordError

TYPE = "groundtruth/object-detection"


def attribute(line: dict[str, Any], named: str | None) -> str:
    """The line's bounding-box label attribute: `named`, or its only one."""
    if named is not None:
        if not isinstance(line.get(named), dict) or not isinstance(line.get(f"{named}-metadata"), dict):
            raise RecordError(f"no label attribute {named!r} with its {named}-metadata")
        return named
    found = [
        key
        for key, value in line.items()
        if isinstance(value, dict) and isinstance(line.get(f"{key}-metadata"), dict)
        if line[f"{key}-metadata"].get("type") == TYPE
    ]
    if len(found) != 1:
        what = f"{len(found)} ({', '.join(sorted(found))}): name one with --label-attribute" if found else "none"
        raise RecordError(f"label attribute: expected one whose -metadata has type {TYPE}, found {what}")
    return found[0]


def created(value: Any) -> float:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise RecordError(f"creation-date: expected an ISO 8601 time, got {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def s3_key(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("s3://") or "/" not in value[5:]:
        raise RecordError(f"source-ref: expected s3://bucket/key, got {value!r}")
    return value[5:].split("/", 1)[1]


class _Line:
    def __init__(self, place: Place, line: dict[str, Any], *, context: Context, named: str | None) -> None:
        self.place, self.line, self.context = place, line, context
        self.name = attribute(line, named)
        self.label, self.metadata = line[self.name], line[f"{self.name}-metadata"]

    def size(self) -> tuple[int, int, int]:
        sizes = self.label.get("image_size")
        if not isinstance(sizes, list) or len(sizes) != 1 or not isinstance(sizes[0], dict):
            raise RecordError(f"{self.name}.image_size: expected [{{width, height, depth}}], got {sizes!r}")
        names = ("width", "height", "depth")
        width, height, depth = (common.positive_integer(sizes[0].get(n), f"{self.name}.image_size.{n}") for n in names)
        return width, height, depth

    def box(self, item: Any, size: tuple[int, int, int]) -> Box:
        if not isinstance(item, dict):
            raise RecordError(f"expected {{class_id, left, top, width, height}}, got {item!r}")
        left, top, width, height = (common.number(item.get(key), key) for key in ("left", "top", "width", "height"))
        classes = self.metadata.get("class-map")
        name = classes.get(str(item.get("class_id"))) if isinstance(classes, dict) else None
        if name is None:
            raise RecordError(f"class_id {item.get('class_id')!r}: not in the class-map")
        class_id = self.context.classes.id_of(name)
        return common.inside(Box(class_id, left, top, width, height), size[0], size[1])

    def boxes(self, size: tuple[int, int, int], problems: list[Problem]) -> list[Box]:
        items = self.label.get("annotations")
        if not isinstance(items, list):
            raise RecordError(f"{self.name}.annotations: expected a list, got {items!r}")
        boxes = []
        for index, item in enumerate(items):
            try:
                boxes.append(self.box(item, size))
            except RecordError as error:
                place = Place(f"{self.place.where} box {index}", self.place.order)
                problems.append(Problem(place, str(self.line.get("source-ref")), str(error)))
        return boxes

    def record(self, problems: list[Problem]) -> Record | None:
        job = self.metadata.get("job-name")
        if not isinstance(job, str) or not job.strip():
            raise RecordError(f"{self.name}-metadata.job-name: missing")
        event_time = created(self.metadata.get("creation-date"))
        width, height, _ = size = self.size()
        boxes = self.boxes(size, problems)
        if len(boxes) != len(self.label["annotations"]):
            return None
        found = common.image(self.context.images, s3_key(self.line.get("source-ref")))
        common.same_size(found, width, height)
        return self.context.record(found, tuple(boxes), job=job.strip(), event_time=event_time)


def _parsed(text: str) -> dict[str, Any]:
    try:
        line = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(f"not JSON ({error.msg})") from None
    if not isinstance(line, dict):
        raise RecordError(f"expected a JSON object, got {type(line).__name__}")
    return line


def read(path: Path, context: Context, *, label_attribute: str | None = None) -> Read:
    read = Read([], [])
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise jobs.JobError(f"{path}: not a Ground Truth output manifest ({error})") from None
    for number_, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        place = Place(f"{path.name} line {number_}", (path.name, number_))
        line: dict[str, Any] = {}
        try:
            line = _parsed(text)
            record = _Line(place, line, context=context, named=label_attribute).record(read.problems)
        except RecordError as error:
            read.problems.append(Problem(place, str(line.get("source-ref") or ""), str(error)))
            continue
        if record is not None:
            read.labelled.append(Labelled(place, record))
    return read

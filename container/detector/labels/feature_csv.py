"""The feature group's own CSV (the metal-tags `labels.csv` layout, detector.records): one row per image, with every
column of the record; annotations as JSON or the Python-literal form. A row is named by its line (header = 1); a row
with a box outside its image, or a class id that is not the config's (when the classes are given), is refused."""

from __future__ import annotations

import csv
from pathlib import Path

from detector import jobs
from detector.labels.classes import ClassMap
from detector.labels.common import Context, Labelled, Place, Problem, Read, inside
from detector.records import FEATURES, Record, RecordError, parse_record


def checked(record: Record, classes: ClassMap) -> Record:
    """The record, when each box lies in its image and has one of the config's class ids (when they are known)."""
    for index, box in enumerate(record.annotations):
        try:
            inside(box, record.image_width, record.image_height)
            if classes.names:
                classes.check(box.class_id)
        except RecordError as error:
            raise RecordError(f"annotations[{index}]: {error}") from None
    return record


def read(labels: Path, context: Context) -> Read:
    """Parsed rows and the refused ones; a file without the feature columns is refused whole (JobError)."""
    read = Read([], [])
    with labels.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        missing = [name for name in FEATURES if name not in (reader.fieldnames or [])]
        if missing:
            raise jobs.JobError(f"{labels}: missing columns {', '.join(missing)}")
        for values in reader:
            place = Place(f"row {reader.line_num}", ("", reader.line_num))
            try:
                read.labelled.append(Labelled(place, checked(parse_record(values), context.classes)))
            except RecordError as error:
                read.problems.append(Problem(place, values.get("source_ref") or "", str(error)))
    return read

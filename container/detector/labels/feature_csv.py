"""The feature group's own CSV (the metal-tags `labels.csv` layout, detector.records): one row per image, with every
column of the record; annotations as JSON or the Python-literal form. A row is named by its line (header = 1)."""

from __future__ import annotations

import csv
from pathlib import Path

from detector import jobs
from detector.labels.common import Labelled, Place, Problem, Read
from detector.records import FEATURES, RecordError, parse_record


def read(labels: Path) -> Read:
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
                read.labelled.append(Labelled(place, parse_record(values)))
            except RecordError as error:
                read.problems.append(Problem(place, values.get("source_ref") or "", str(error)))
    return read

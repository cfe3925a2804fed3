"""The feature group's record schema and the parsing of its annotations.

A record: `source_ref` (image URI, the record id), `image_width`, `image_height`, `image_depth`,
`annotations` (list of `{class_id, top, left, height, width}` in pixels), `event_time`, `labeling_job`,
`status` (APPROVED or REJECTED). Annotations arrive as JSON or as the Python literal Ground Truth exports
produced; the literal form is read with `ast.literal_eval`, never `eval`.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from typing import Any

FEATURES = (
    "source_ref",
    "image_width",
    "image_height",
    "image_depth",
    "annotations",
    "event_time",
    "labeling_job",
    "status",
)
STATUSES = ("APPROVED", "REJECTED")
BOX_KEYS = ("class_id", "top", "left", "height", "width")


class RecordError(ValueError):
    """A record or one of its fields is unusable; the message names the field."""


@dataclass(frozen=True)
class Box:
    class_id: int
    left: float
    top: float
    width: float
    height: float

    @property
    def corners(self) -> tuple[float, float, float, float]:
        """xmin, ymin, xmax, ymax in pixels."""
        return self.left, self.top, self.left + self.width, self.top + self.height

    def to_json(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "top": self.top,
            "left": self.left,
            "height": self.height,
            "width": self.width,
        }


@dataclass(frozen=True)
class Record:
    source_ref: str
    image_width: int
    image_height: int
    image_depth: int
    annotations: tuple[Box, ...]
    event_time: float
    labeling_job: str
    status: str

    def feature_values(self) -> dict[str, str]:
        """The record as PutRecord's string values; annotations as JSON."""
        return {
            "source_ref": self.source_ref,
            "image_width": str(self.image_width),
            "image_height": str(self.image_height),
            "image_depth": str(self.image_depth),
            "annotations": json.dumps([box.to_json() for box in self.annotations]),
            "event_time": repr(float(self.event_time)),
            "labeling_job": self.labeling_job,
            "status": self.status,
        }


def parse_annotations(value: Any) -> tuple[Box, ...]:
    """A list of boxes from JSON text, Python-literal text or an already parsed list."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
                raise RecordError(f"annotations: neither JSON nor a Python literal ({type(error).__name__})") from None
    if not isinstance(parsed, list):
        raise RecordError(f"annotations: expected a list of boxes, got {type(parsed).__name__}")
    return tuple(_box(item, index) for index, item in enumerate(parsed))


def _box(item: Any, index: int) -> Box:
    where = f"annotations[{index}]"
    if not isinstance(item, dict):
        raise RecordError(f"{where}: expected an object, got {type(item).__name__}")
    missing = [key for key in BOX_KEYS if key not in item]
    if missing:
        raise RecordError(f"{where}: missing {', '.join(missing)}")
    values = {}
    for key in BOX_KEYS:
        number = item[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise RecordError(f"{where}.{key}: expected a number, got {number!r}")
        values[key] = number
    if values["class_id"] != int(values["class_id"]) or values["class_id"] < 0:
        raise RecordError(f"{where}.class_id: expected a non-negative integer, got {item['class_id']!r}")
    return Box(int(values["class_id"]), values["left"], values["top"], values["width"], values["height"])


def _integer(row: dict[str, Any], name: str) -> int:
    value = row.get(name)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordError(f"{name}: expected a positive integer, got {value!r}") from None
    if not number.is_integer() or number <= 0:
        raise RecordError(f"{name}: expected a positive integer, got {value!r}")
    return int(number)


def parse_record(row: dict[str, Any]) -> Record:
    """A record from a row of strings (CSV or offline store); RecordError names the first bad field."""
    source_ref = row.get("source_ref")
    if not isinstance(source_ref, str) or not source_ref.strip():
        raise RecordError("source_ref: missing")
    status = row.get("status")
    if status not in STATUSES:
        raise RecordError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
    event_time_value = row.get("event_time")
    try:
        event_time = float(event_time_value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordError(f"event_time: expected seconds since the epoch, got {event_time_value!r}") from None
    if not math.isfinite(event_time):
        raise RecordError(f"event_time: expected seconds since the epoch, got {event_time_value!r}")
    return Record(
        source_ref=source_ref.strip(),
        image_width=_integer(row, "image_width"),
        image_height=_integer(row, "image_height"),
        image_depth=_integer(row, "image_depth"),
        annotations=parse_annotations(row.get("annotations", "")),
        event_time=event_time,
        labeling_job=str(row.get("labeling_job") or ""),
        status=status,
    )

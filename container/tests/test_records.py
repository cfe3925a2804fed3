"""The feature-group schema: annotations in both accepted forms, and errors that name the field."""

from __future__ import annotations

import pytest
from detector.records import Box, RecordError, parse_annotations, parse_record

ROW = {
    "source_ref": "s3://bucket/images/a.jpg",
    "image_width": "450",
    "image_height": "300",
    "image_depth": "3",
    "annotations": "[{'class_id': 0, 'top': 123, 'left': 81, 'height': 97, 'width': 82}]",
    "event_time": "1657199072.0",
    "labeling_job": "labeling-job/x",
    "status": "APPROVED",
}


def test_python_literal_and_json_annotations_give_the_same_boxes() -> None:
    literal = parse_annotations("[{'class_id': 0, 'top': 1, 'left': 2, 'height': 3, 'width': 4}]")
    as_json = parse_annotations('[{"class_id": 0, "top": 1, "left": 2, "height": 3, "width": 4}]')
    assert literal == as_json == (Box(class_id=0, left=2, top=1, width=4, height=3),)
    assert literal[0].corners == (2, 1, 6, 4)


def test_code_in_annotations_is_never_run() -> None:
    with pytest.raises(RecordError, match="annotations: neither JSON nor a Python literal"):
        parse_annotations("__import__('os').system('touch /tmp/pwned')")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{'class_id': 0}", "expected a list of boxes"),
        ("[1]", r"annotations\[0\]: expected an object"),
        ("[{'class_id': 0, 'top': 1}]", r"annotations\[0\]: missing left, height, width"),
        (
            "[{'class_id': 0, 'top': 'x', 'left': 1, 'height': 1, 'width': 1}]",
            r"annotations\[0\]\.top: expected a number",
        ),
        (
            "[{'class_id': -1, 'top': 1, 'left': 1, 'height': 1, 'width': 1}]",
            r"class_id: expected a non-negative integer",
        ),
        (
            "[{'class_id': 0.5, 'top': 1, 'left': 1, 'height': 1, 'width': 1}]",
            r"class_id: expected a non-negative integer",
        ),
        ("[{'class_id': 0, 'top': 1, 'left", "neither JSON nor a Python literal"),
    ],
)
def test_malformed_annotations_are_named(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_annotations(text)


def test_a_row_becomes_a_record_and_back_to_put_record_values() -> None:
    record = parse_record(ROW)
    assert (record.image_width, record.image_height, record.status) == (450, 300, "APPROVED")
    values = record.feature_values()
    assert parse_record(values) == record  # JSON annotations read back to the same boxes


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("source_ref", "", "source_ref: missing"),
        ("status", "MAYBE", "status: expected one of APPROVED, REJECTED"),
        ("image_width", "wide", "image_width: expected a positive integer"),
        ("image_height", "0", "image_height: expected a positive integer"),
        ("event_time", "yesterday", "event_time: expected seconds"),
    ],
)
def test_bad_fields_are_named(field: str, value: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_record({**ROW, field: value})

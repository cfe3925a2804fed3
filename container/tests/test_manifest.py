"""The dataset manifest: one canonical form (the same data gives the same bytes and digest), read back exactly,
and errors that name the line."""

from __future__ import annotations

import pytest
from detector import manifest
from detector.records import Box


def entry(split: str, source_ref: str, boxes: tuple[Box, ...] = (), **changes: object) -> manifest.Entry:
    values: dict[str, object] = {
        "split": split,
        "source_ref": source_ref,
        "version_id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "sha256": "a" * 64,
        "annotations_sha256": manifest.annotations_sha256(boxes),
        "boxes": len(boxes),
        "labeling_job": "labeling-job/metal-tags",
        "event_time": manifest.timestamp(1_657_199_072.25),
        "write_time": manifest.timestamp(1_657_199_100),
    }
    return manifest.Entry(**{**values, **changes})  # type: ignore[arg-type]


def test_the_same_entries_in_any_order_give_the_same_bytes_sorted_by_split_then_source_ref() -> None:
    entries = [entry("test", "s3://b/c.jpg"), entry("train", "s3://b/z.jpg"), entry("train", "s3://b/a.jpg")]
    data = manifest.dumps(entries)
    assert data == manifest.dumps(list(reversed(entries)))
    assert [e.source_ref for e in manifest.loads(data)] == ["s3://b/a.jpg", "s3://b/z.jpg", "s3://b/c.jpg"]
    assert manifest.loads(data) == sorted(entries, key=lambda e: (e.split != "train", e.source_ref))
    assert manifest.digest(data) == manifest.digest(manifest.dumps(entries))
    assert manifest.digest(data) != manifest.digest(manifest.dumps(entries[:2]))


def test_times_are_utc_milliseconds_and_the_label_fingerprint_ignores_box_order_but_not_a_moved_box() -> None:
    assert manifest.timestamp(1_657_199_072.25) == "2022-07-07T13:04:32.250Z"
    one, two = Box(0, 81, 123, 82, 97), Box(0, 10, 20, 30, 40)
    assert manifest.annotations_sha256([one, two]) == manifest.annotations_sha256([two, one])
    assert manifest.annotations_sha256([one, two]) != manifest.annotations_sha256([one, Box(0, 11, 20, 30, 40)])
    assert manifest.annotations_sha256([one]) != manifest.annotations_sha256([one, two])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "line 2: not JSON"),
        ("[]", "line 2: expected an object"),
        ('{"split": "train"}', "line 2: missing source_ref"),
        (entry("train", "x").line().replace('"train"', '"holdout"'), "line 2: split 'holdout' is not one of"),
    ],
)
def test_a_bad_line_is_named(line: str, message: str) -> None:
    data = manifest.dumps([entry("train", "s3://b/a.jpg")]) + line.encode() + b"\n"
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.loads(data)

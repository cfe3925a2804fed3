"""make run's summary names the data the run learned from and what changed in it since the champion."""

from __future__ import annotations

from local.run import data_lines


def test_the_summary_names_the_as_of_time_the_manifest_and_the_change_since_the_champion() -> None:
    detail = {
        "dataset": {"as_of": "2026-12-05T03:00:00.000Z", "images": 201, "manifest_sha256": "0123456789abcdef" * 4},
        "data_changes": {"summary": "Data since v1: unchanged; 201 images (v1: 201)"},
    }
    assert data_lines(detail) == [
        "data           as of 2026-12-05T03:00:00.000Z, 201 images, manifest sha256 0123456789abcdef",
        "               Data since v1: unchanged; 201 images (v1: 201)",
    ]


def test_a_run_from_before_pinned_data_says_nothing_of_it() -> None:
    assert data_lines({"dataset": {"images": 10}, "data_changes": None}) == []

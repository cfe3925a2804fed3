"""What changed in the data since the champion, as GET /runs/{id} answers it and people read it."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane import data_changes
from control_plane.models import DataChanges, RunDetail


def split(**counts: int) -> dict[str, int]:
    return {"added": 0, "removed": 0, "relabelled": 0, "pixels_changed": 0, "images": 0, "champion_images": 0,
            **counts}  # fmt: skip


def evaluated(**totals: int) -> dict[str, Any]:
    """An evaluation.json whose data_changes are as Evaluate writes them (detector.data_changes)."""
    return {
        "metrics": {"map": {"value": 0.7}},
        "data_changes": {
            "champion_version": 3,
            "splits": {
                "train": split(added=1, images=31, champion_images=30),
                "validation": split(images=5, champion_images=5),
                "test": split(relabelled=1, images=5, champion_images=5),
            },
            "totals": {**split(added=1, relabelled=1, images=41, champion_images=40), "moved": 0, **totals},
            "examples": {"added": ["s3://images/new.jpg"], "relabelled": ["s3://images/t.jpg"]}
            | {kind: [] for kind in ("removed", "moved", "pixels_changed")},
        },
    }


def test_one_added_and_one_relabelled_read_as_one_line_with_the_splits_they_are_in() -> None:
    changes = data_changes.from_evaluation(evaluated())

    assert changes is not None
    assert changes.summary == (
        "Data since v3: +1 image, 1 relabelled, 0 removed (train +1, test 1 relabelled); 41 images (v3: 40)"
    )
    assert changes.totals is not None
    assert (changes.totals.added, changes.totals.relabelled, changes.splits["train"].added) == (1, 1, 1)
    assert changes.examples["relabelled"] == ["s3://images/t.jpg"]


def test_every_kind_of_change_is_named_and_an_unchanged_dataset_says_so() -> None:
    report = evaluated()
    report["data_changes"]["splits"]["validation"] = split(removed=2, pixels_changed=1, images=3, champion_images=5)
    report["data_changes"]["totals"].update(removed=2, pixels_changed=1, moved=1, added=3)
    assert data_changes.summary(DataChanges.model_validate(report["data_changes"])) == (
        "Data since v3: +3 images, 1 relabelled, 2 removed, 1 with new pixels, 1 moved to another split "
        "(train +1, validation -2 1 with new pixels, test 1 relabelled); 41 images (v3: 40)"
    )
    same = {"champion_version": 2, "splits": {"train": split(images=1, champion_images=1)},
            "totals": {**split(images=1, champion_images=1), "moved": 0}, "examples": {}}  # fmt: skip
    assert data_changes.summary(DataChanges.model_validate(same)) == "Data since v2: unchanged, 1 image (v2: 1)"


@pytest.mark.parametrize(
    ("absent", "expected"),
    [
        (
            {"champion_version": None, "absent": "no approved model in the group"},
            "Data since the champion: not compared (no approved model in the group)",
        ),
        (
            {"champion_version": 2, "absent": "champion v2 names no data manifest"},
            "Data since v2: not compared (champion v2 names no data manifest)",
        ),
    ],
)
def test_no_comparison_says_why(absent: dict[str, Any], expected: str) -> None:
    changes = data_changes.from_evaluation({"data_changes": absent})
    assert changes is not None
    assert (changes.summary, changes.totals, changes.absent) == (expected, None, absent["absent"])


def test_an_evaluation_before_data_was_compared_has_none_and_a_damaged_one_says_so() -> None:
    assert data_changes.from_evaluation(None) is None
    assert data_changes.from_evaluation({"metrics": {"map": {"value": 0.7}}}) is None
    damaged = data_changes.from_evaluation({"data_changes": {"champion_version": "three", "totals": []}})
    assert damaged is not None
    assert damaged.summary.startswith("Data since the champion: not compared (evaluation.json's data_changes is not")


def test_the_run_detail_model_carries_the_changes_as_the_api_answers_them() -> None:
    changes = data_changes.from_evaluation(evaluated())
    detail = RunDetail(run_id="abcdef123456", execution_arn="arn", status="Succeeded", parameters={}, steps=[],
                       data_changes=changes)  # fmt: skip

    answered = detail.model_dump(mode="json")["data_changes"]

    assert answered["totals"] == {**split(added=1, relabelled=1, images=41, champion_images=40), "moved": 0}
    assert answered["splits"]["test"]["relabelled"] == 1
    assert answered["summary"].startswith("Data since v3: +1 image, 1 relabelled, 0 removed")
    assert RunDetail.model_validate(detail.model_dump(mode="json")) == detail

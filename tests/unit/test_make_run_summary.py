"""make run's summary names the data the run learned from and what changed in it since the champion, and the
thresholds its precision and recall were counted at."""

from __future__ import annotations

from local.run import counting_line, data_lines


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


EVALUATION = {
    "score_threshold": 0.31, "score_threshold_source": "model",
    "per_class": {"scratch": {"true_positives": 3, "false_positives": 1, "boxes": 4}},
}  # fmt: skip


def test_the_summary_names_the_nms_threshold_beside_the_score_threshold() -> None:
    evaluation = {**EVALUATION, "nms_threshold": 0.4, "nms_threshold_source": "validation"}
    assert counting_line(evaluation) == (
        "at score 0.31 (model), NMS IoU 0.4 (validation): precision 0.750, recall 0.750 "
        "(3 of 4 scratches found, 1 false detections)"
    )


def test_an_evaluation_from_before_the_nms_choice_names_no_nms_threshold() -> None:
    assert counting_line(EVALUATION) == (
        "at score 0.31 (model): precision 0.750, recall 0.750 (3 of 4 scratches found, 1 false detections)"
    )
    assert counting_line({"per_class": {}}) is None

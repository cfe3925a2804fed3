"""The NMS threshold chosen with the score threshold on the validation split (detector.nms), through GluonCV's own
NMS (model.suppress), which gives what the exported graph gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import pytest
from detector import jobs, model, nms, thresholds
from detector.arrays import Array
from detector.validation import Validator, suppressed_detections, unsuppressed_graph, validation_detections

WIDTH, HEIGHT = 400, 100
SCRATCH, SHORT_SCRATCH = [0, 0, 200, 10], [0, 60, 100, 70]
# two long thin boxes on the first scratch: IoU 120/290 = 0.41 with each other; the second is no hit (IoU 0.45)
FIRST, SECOND = [0, 0, 190, 10], [70, 0, 290, 10]
OTHER = [0, 60, 95, 70]  # the second scratch, found at a lower score than the double


def rows(*found: tuple[list[int], float]) -> Array:
    """Unsuppressed network rows [class id, score, corners], padded past POST_NMS with rows below valid_thresh."""
    padding = [[0, 0.0, 0, 0, 1, 1]] * (model.POST_NMS + 10)
    return np.array([[0, score, *corners] for corners, score in found] + padding, dtype=np.float32)


class Unsuppressed:
    """Stands in for the network's unsuppressed graph: the same rows for every image."""

    def __init__(self, found: Array) -> None:
        self.found = mx.nd.array(found[None])

    def __call__(self, data: Any) -> tuple[Any, Any, Any]:
        found = mx.nd.repeat(self.found, repeats=data.shape[0], axis=0)
        return found[:, :, 0:1], found[:, :, 1:2], found[:, :, 2:6]


def one_image(truths: list[list[int]]) -> list[tuple[Any, Any]]:
    label = mx.nd.array([[[*box, 0] for box in truths]])
    return [(mx.nd.zeros((1, 3, HEIGHT, WIDTH)), label)]


def test_one_box_per_scratch_wins_over_gluoncvs_045() -> None:
    # Given: the double on one scratch (0.76 and 0.48, as the demo's held-out image) and a second scratch at 0.40
    graph = Unsuppressed(rows((FIRST, 0.76), (SECOND, 0.48), (OTHER, 0.40)))
    loader = one_image([SCRATCH, SHORT_SCRATCH])

    # When
    candidates = suppressed_detections(graph, loader, nms.GRID)
    pair = nms.choose(candidates, classes=1)

    # Then: at 0.45 the double survives (best F1 2*2/(3+2) at score 0.40); at 0.4 it is suppressed: F1 1
    assert [len(candidates[iou][0][0]) for iou in (0.4, 0.45)] == [2, 3]
    assert pair is not None
    assert pair.nms_threshold == 0.4  # the highest IoU that suppresses the double
    assert pair.score.threshold == pytest.approx(0.40)
    assert pair.score.f1 == pytest.approx(1.0)
    assert pair.default_f1 == pytest.approx(0.8)


def detections(*found: tuple[list[int], float]) -> Array:
    return np.array([[*corners, score, 0] for corners, score in found], dtype=float)


TRUTHS = np.array([[*SCRATCH, 0], [*SHORT_SCRATCH, 0]], dtype=float)
SINGLE = [(detections((FIRST, 0.76), (OTHER, 0.40)), TRUTHS)]
DOUBLE = [(detections((FIRST, 0.76), (SECOND, 0.48), (OTHER, 0.40)), TRUTHS)]


@pytest.mark.parametrize(
    ("by_iou", "expected"),
    [
        ({iou: SINGLE for iou in nms.GRID}, 0.45),  # every IoU as good: GluonCV's stays
        ({0.3: SINGLE, 0.35: SINGLE, 0.45: DOUBLE, 0.5: DOUBLE}, 0.35),  # else the highest of the best
        ({0.3: DOUBLE, 0.45: DOUBLE, 0.6: DOUBLE}, 0.45),
    ],
)
def test_ties_go_to_gluoncvs_045_else_to_the_fewest_suppressions(
    by_iou: dict[float, list[tuple[Array, Array]]], expected: float
) -> None:
    pair = nms.choose(by_iou, classes=1)
    assert pair is not None
    assert pair.nms_threshold == expected


def test_the_grid_runs_from_02_to_07_and_holds_gluoncvs_default() -> None:
    assert nms.GRID[0] == 0.2
    assert nms.GRID[-1] == 0.7
    assert nms.GLUONCV_DEFAULT in nms.GRID
    assert np.allclose(np.diff(nms.GRID), 0.05)


def test_nothing_found_chooses_nothing() -> None:
    missed = [(detections(([300, 80, 310, 90], 0.9)), TRUTHS)]
    assert nms.choose({iou: missed for iou in nms.GRID}, classes=1) is None
    assert nms.choose({iou: [] for iou in nms.GRID}, classes=1) is None


def test_without_a_validation_split_gluoncvs_045_stays_and_says_so() -> None:
    validator = Validator(graph=None, loader=None, classes=("scratch",), ctx=mx.cpu(), interval=1, epochs=1)
    assert validator.thresholds(net=None) == {"nms_threshold": 0.45, "nms_threshold_source": nms.NO_VALIDATION}


def test_a_model_without_an_nms_threshold_has_gluoncvs_baked_in() -> None:
    assert nms.of_meta({"classes": ["scratch"]}) == (0.45, nms.BAKED_IN)
    assert nms.of_meta({"nms_threshold": 0.3, "nms_threshold_source": nms.CHOSEN}) == (0.3, nms.CHOSEN)


@pytest.mark.parametrize("nms_threshold", [0.3, 0.6])
def test_the_exported_graph_gives_what_suppressing_the_unsuppressed_graph_gives(
    nms_threshold: float, tmp_path: Path
) -> None:
    # Given: a fresh two-class network (its random scores overlap a lot) exported with NMS at the threshold
    mx.random.seed(7)
    net = model.build("mobilenet0.25", ("scratch", "dent"))
    model.export(net, tmp_path, {"nms_threshold": nms_threshold}, width=96, height=64)
    exported, _ = model.load_exported(tmp_path)
    data = mx.nd.random.uniform(-2, 2, shape=(2, 3, 64, 96))
    loader = [(data, mx.nd.array([[[10, 10, 50, 30, 0]], [[5, 5, 90, 60, 1]]]))]

    # When
    baked = validation_detections(exported, loader, mx.cpu())
    candidates = suppressed_detections(unsuppressed_graph(net), loader, (nms_threshold, 0.7))

    # Then: the same detections, box for box; and the threshold matters (other boxes than at 0.7)
    assert [len(found) for found, _ in baked] == [len(found) for found, _ in candidates[nms_threshold]]
    for (found, truths), (chosen, chosen_truths) in zip(baked, candidates[nms_threshold], strict=True):
        np.testing.assert_array_equal(found, chosen)
        np.testing.assert_array_equal(truths, chosen_truths)
    assert not np.array_equal(candidates[nms_threshold][0][0], candidates[0.7][0][0])


def test_the_chosen_pair_is_stored_and_is_what_the_exported_model_scores(tmp_path: Path) -> None:
    # Given a fresh network and a validation image whose one box is where the network's best detection lies
    mx.random.seed(3)
    net = model.build("mobilenet0.25", ("scratch",))
    data = mx.nd.random.uniform(-2, 2, shape=(1, 3, 64, 96))
    anywhere = [(data, mx.nd.array([[[0, 0, 1, 1, 0]]]))]
    [(found, _)] = suppressed_detections(unsuppressed_graph(net), anywhere, (0.45,))[0.45]  # highest score first
    loader = [(data, mx.nd.array([[[*found[0, :4], 0]]]))]
    validator = Validator(graph=None, loader=loader, classes=("scratch",), ctx=mx.cpu(), interval=1, epochs=1)

    # When the thresholds are chosen and the model exported with them
    meta = validator.thresholds(net)
    model.export(net, tmp_path, meta, width=96, height=64)

    # Then the metadata holds the pair, and the exported model's best score threshold is the one stored
    assert meta["nms_threshold"] in nms.GRID
    assert meta["nms_threshold_source"] == nms.CHOSEN
    assert meta["validation_f1"]["f1"] > 0
    assert meta["nms_default_f1"] is not None
    exported, _ = model.load_exported(tmp_path)
    again = thresholds.choose(validation_detections(exported, loader, mx.cpu()), 1)
    assert again is not None
    assert (again.threshold, again.f1) == pytest.approx(
        (meta["score_threshold"], meta["validation_f1"]["f1"]), abs=1e-6
    )


def test_an_exported_model_loads_at_another_nms_threshold_as_if_exported_with_it(tmp_path: Path) -> None:
    # Given a fresh network exported with NMS at 0.25
    mx.random.seed(7)
    net = model.build("mobilenet0.25", ("scratch",))
    model.export(net, tmp_path, {"nms_threshold": 0.25}, width=96, height=64)
    data = mx.nd.random.uniform(-2, 2, shape=(2, 3, 64, 96))
    loader = [(data, mx.nd.array([[[10, 10, 50, 30, 0]], [[5, 5, 90, 60, 0]]]))]

    # When it is loaded at 0.7
    at_07, _ = model.load_exported(tmp_path, nms_threshold=0.7)

    # Then it detects what the network suppressed at 0.7 detects, and other boxes than at its own 0.25
    found = validation_detections(at_07, loader, mx.cpu())
    candidates = suppressed_detections(unsuppressed_graph(net), loader, (0.25, 0.7))
    for (mine, _), (expected, _) in zip(found, candidates[0.7], strict=True):
        np.testing.assert_array_equal(mine, expected)
    assert not np.array_equal(found[0][0], candidates[0.25][0][0])


def test_a_symbol_without_nms_cannot_be_given_one() -> None:
    with pytest.raises(jobs.JobError, match="no NMS"):
        model.with_nms('{"nodes": [{"op": "null", "name": "data"}]}', 0.3)

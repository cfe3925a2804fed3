"""The network's training targets: which predictions near a box are left out of the objectness loss."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from detector import model

BOX = [0.0, 0.0, 100.0, 100.0]
# predictions overlapping the box by IoU 0.2, 0.6 and 0.8, and one that is the box's anchor (prefetched positive)
PREDICTIONS = [[0, 0, 100, 20], [0, 0, 100, 60], [0, 0, 100, 80], [0, 0, 100, 30]]


def _targets(net: object, ignore_iou: float, label_smoothing: bool = False) -> tuple[list[float], list[float]]:
    model.set_training_targets(net, ignore_iou, label_smoothing)
    count = len(PREDICTIONS)
    prefetched_objectness = mx.nd.array([[[0], [0], [0], [1]]])
    classes = mx.nd.array([[[-1], [-1], [-1], [1]]])
    zeros = mx.nd.zeros((1, count, 2))
    objectness, _, _, _, class_targets, _ = net._target_generator(  # type: ignore[attr-defined]
        mx.nd.array([PREDICTIONS]), mx.nd.array([[BOX]]), prefetched_objectness, zeros, zeros, zeros, classes
    )
    return objectness[0, :, 0].asnumpy().tolist(), class_targets[0, :, 0].asnumpy().tolist()


@pytest.fixture(scope="module")
def net() -> object:
    return model.build("mobilenet0.25", ("scratch",))


def test_gluoncvs_rule_ignores_only_predictions_overlapping_a_box_by_more_than_0_7(net: object) -> None:
    objectness, _ = _targets(net, 0.7)
    assert objectness == [0, 0, -1, 1]  # negative, negative, ignored, the anchor's positive


def test_a_lower_ignore_iou_stops_penalising_the_predictions_between(net: object) -> None:
    objectness, _ = _targets(net, 0.5)
    assert objectness == [0, -1, -1, 1]
    objectness, _ = _targets(net, 0.1)
    assert objectness == [-1, -1, -1, 1]


def test_label_smoothing_survives_the_new_targets(net: object) -> None:
    _, plain = _targets(net, 0.5)
    _, smoothed = _targets(net, 0.5, label_smoothing=True)
    assert plain[3] == 1
    assert smoothed[3] == pytest.approx(1 - 1 / 40)  # GluonCV's smoothing for one class
    assert np.allclose(plain[:3], smoothed[:3])

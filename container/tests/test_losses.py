"""The GIoU term: each slot's anchor and cell, and a loss that is zero on the target and counts lost overlap."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from detector import losses, model, transforms
from detector.arrays import Array
from detector.targets import Targets
from gluoncv.loss import YOLOV3Loss

WIDTH, HEIGHT = 192, 128


@pytest.fixture(scope="module")
def targets() -> Targets:
    t = transforms.TrainTransform(WIDTH, HEIGHT, model.build("mobilenet0.25", ("scratch",)))
    return Targets(t._anchors, t._offsets, t._feat_maps, classes=1, match_iou=0.3)


BOXES = np.array([[20, 30, 140, 36], [100, 40, 112, 110], [5, 5, 60, 50]], np.float32)  # thin, tall, square


def _batch(targets: Targets, boxes: Array) -> tuple[Array, ...]:
    """One image's five targets and GluonCV's class mask, with a batch axis, as the merger hands them on."""
    objectness, center, scale, weights, classes = targets(
        WIDTH, HEIGHT, boxes, gt_ids=np.zeros((len(boxes), 1), np.float32)
    )
    mask = (classes >= 0).astype(np.float32)
    return tuple(a[None] for a in (objectness, center, scale, weights, np.maximum(classes, 0), mask))


def test_every_slot_knows_the_anchor_and_the_cell_its_targets_use(targets: Targets) -> None:
    anchors, strides = targets.slots(WIDTH, HEIGHT)
    objectness, center, scale, _, _, _ = (a[0] for a in _batch(targets, BOXES))
    assert anchors.shape == strides.shape == (len(objectness), 2)
    assert sorted(set(strides[:, 0].tolist())) == [8.0, 16.0, 32.0]
    positive = np.flatnonzero(objectness[:, 0] > 0)
    assert len(positive) > len(BOXES)  # match_iou 0.3: some boxes are learnt by several anchors
    sizes = np.exp(scale[positive]) * anchors[positive]
    centres = center[positive] * strides[positive]  # within the cell
    matched = 0
    for box in BOXES:
        size = box[2:] - box[:2]
        within = np.mod((box[:2] + box[2:]) / 2, strides[positive])
        same_size = np.all(np.isclose(sizes, size, rtol=1e-4), axis=1)
        hits = same_size & np.all(np.isclose(centres, within, atol=1e-3), axis=1)
        matched += int(hits.sum())
        assert hits.any(), box
    assert matched == len(positive)  # every positive slot is one of the boxes, seen through its own anchor and cell


def _losses(targets: Targets, centres: Array, scales: Array, weight: float = 1.0) -> list[Array]:
    """The five losses of one image, and (checked here) finite gradients for every prediction."""
    anchors, strides = targets.slots(WIDTH, HEIGHT)
    block = losses.GIoUYOLOV3Loss(anchors, strides, weight)
    block.initialize()
    t = _batch(targets, BOXES)
    n = t[0].shape[1]
    predictions = [mx.nd.zeros((1, n, 1)), mx.nd.array(centres), mx.nd.array(scales), mx.nd.zeros((1, n, 1))]
    for array in predictions:
        array.attach_grad()
    with mx.autograd.record():
        found = block(*predictions, *(mx.nd.array(a) for a in t))
    mx.autograd.backward(found[4])
    for array in predictions[1:3]:
        assert np.isfinite(array.grad.asnumpy()).all()
    return [x.asnumpy() for x in found]


def _logit(p: Array) -> Array:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    result: Array = np.log(p / (1 - p))
    return result


@pytest.mark.parametrize("size", [1e3, -1e3])
def test_the_giou_term_is_zero_on_the_target_whatever_the_other_slots_predict(targets: Targets, size: float) -> None:
    objectness, center, scale, _, _, _ = _batch(targets, BOXES)
    positive = objectness > 0
    # empty slots predict enormous boxes, or tiny ones that meet no target: no inf, no NaN, no gradient lost
    wild = np.where(positive, _logit(center), 40.0)
    huge = np.where(positive, scale, size)
    exact = _losses(targets, wild, huge)
    assert exact[4][0] == pytest.approx(0.0, abs=1e-3)
    # GluonCV's four terms are GluonCV's, unchanged
    reference = YOLOV3Loss()(
        mx.nd.zeros((1, center.shape[1], 1)), mx.nd.array(wild), mx.nd.array(huge),
        mx.nd.zeros((1, center.shape[1], 1)), *(mx.nd.array(a) for a in _batch(targets, BOXES)),
    )  # fmt: skip
    for ours, theirs in zip(exact[:4], reference, strict=True):
        np.testing.assert_allclose(ours, theirs.asnumpy(), rtol=1e-5)


def test_a_pixel_off_costs_a_thin_box_more_than_a_square_one(targets: Targets) -> None:
    objectness, center, scale, weights, _, _ = _batch(targets, BOXES)
    anchors, strides = targets.slots(WIDTH, HEIGHT)
    positive = np.flatnonzero(objectness[0, :, 0] > 0)
    thin = [i for i in positive if np.isclose(np.exp(scale[0, i, 1]) * anchors[i, 1], 6, rtol=1e-4)]
    square = [i for i in positive if np.isclose(np.exp(scale[0, i, 1]) * anchors[i, 1], 45, rtol=1e-4)]
    assert thin
    assert square

    def cost(slot: int) -> float:
        """The GIoU term when the box at `slot` alone is predicted one pixel low and the rest exactly."""
        moved = center.copy()
        moved[0, slot, 1] += 1 / strides[slot, 1]
        return float(_losses(targets, _logit(moved), scale)[4][0])

    # 6 px tall, 1 px lower: intersection 5/6 of the box, union 7/6, hull = union: 1 - GIoU = 1 - 5/7
    box_weight = weights[0, thin[0], 0]
    assert cost(thin[0]) == pytest.approx(box_weight * (1 - 5 / 7), rel=2e-3)
    assert cost(thin[0]) > 5 * cost(square[0])
    # the weight scales the term and nothing else
    grown = scale + 0.1  # every box 10% larger each way
    half = _losses(targets, _logit(center), grown, weight=0.5)
    full = _losses(targets, _logit(center), grown, weight=1.0)
    assert half[4][0] == pytest.approx(full[4][0] / 2, rel=1e-5)
    assert half[4][0] > 0

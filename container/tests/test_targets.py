"""The NumPy YOLOv3 targets (detector.targets) against GluonCV's generator: the same values, for random boxes of
every size, padding rows, mixup ratios and several classes."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from detector import model, transforms
from detector.arrays import Array
from detector.targets import Targets, _iou

WIDTH, HEIGHT = 320, 224


@pytest.fixture(scope="module")
def transform() -> transforms.TrainTransform:
    return transforms.TrainTransform(
        WIDTH, HEIGHT, model.build("mobilenet0.25", ("scratch", "dent", "stain")), mixup=True
    )


@pytest.mark.parametrize("seed", range(30))
def test_the_targets_are_gluoncvs_value_for_value(transform: transforms.TrainTransform, seed: int) -> None:
    generator = np.random.default_rng(seed)
    count = int(generator.integers(1, 12))
    corners = generator.uniform(0, 1, (count, 2)) * [WIDTH, HEIGHT]
    sizes = generator.choice([0.5, 2, 8, 40, 150], (count, 2)) * generator.uniform(0.5, 1.5, (count, 2))
    boxes = np.concatenate([corners, np.minimum(corners + sizes, [WIDTH - 1, HEIGHT - 1])], axis=1)
    padding = int(generator.integers(0, 3))
    boxes = np.vstack([boxes, -np.ones((padding, 4))]).astype(np.float32)
    ids = np.vstack([generator.integers(0, 3, (count, 1)), -np.ones((padding, 1))]).astype(np.float32)
    mix = None if seed % 2 else generator.uniform(0, 1, (count + padding, 1)).astype(np.float32)
    t = transform
    expected = t._target_generator(
        t._fake_x, t._feat_maps, t._anchors, t._offsets, mx.nd.array(boxes[None]), mx.nd.array(ids[None]),
        None if mix is None else mx.nd.array(mix[None]),
    )  # fmt: skip

    found = Targets(t._anchors, t._offsets, t._feat_maps, classes=3)(WIDTH, HEIGHT, boxes, gt_ids=ids, gt_mixratio=mix)

    for ours, theirs in zip(found, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs[0].asnumpy())


def _positives(found: tuple[Array, ...]) -> tuple[Array, Array]:
    """(objectness, scale targets) of the positive slots."""
    objectness, _, scale, _, _ = found
    positive = objectness[:, 0] > 0
    return objectness[positive, 0], scale[positive]


def test_a_lower_match_iou_lets_every_overlapping_anchor_learn_the_box(transform: transforms.TrainTransform) -> None:
    t = transform
    targets = Targets(t._anchors, t._offsets, t._feat_maps, classes=3, match_iou=0.3)
    box_w, box_h = 40.0, 30.0
    boxes = np.array([[100, 100, 100 + box_w, 100 + box_h]], np.float32)
    half = np.array([-box_w / 2, -box_h / 2, box_w / 2, box_h / 2], np.float32)[None]
    overlaps = _iou(targets.anchor_corners, half)[:, 0]
    chosen = set(np.flatnonzero(overlaps >= 0.3)) | {int(overlaps.argmax())}
    assert 1 < len(chosen) < len(overlaps)  # the case is worth testing: some anchors learn it, not all

    objectness, scale = _positives(targets(WIDTH, HEIGHT, boxes, gt_ids=np.zeros((1, 1), np.float32)))

    assert np.all(objectness == 1)
    assert len(objectness) == len(chosen)
    expected = sorted(np.log(box_w / targets.anchors[a, 0]) for a in chosen)
    np.testing.assert_allclose(sorted(scale[:, 0]), expected, rtol=1e-5)
    # the default is GluonCV's rule: the best anchor alone
    _, alone = _positives(
        Targets(t._anchors, t._offsets, t._feat_maps, classes=3)(WIDTH, HEIGHT, boxes, gt_ids=np.zeros((1, 1)))
    )
    assert len(alone) == 1


def test_a_boxs_best_anchor_wins_over_another_boxs_extra_match(transform: transforms.TrainTransform) -> None:
    t = transform
    targets = Targets(t._anchors, t._offsets, t._feat_maps, classes=3, match_iou=0.3)
    # box A is exactly anchor 4's shape; box B, centred on the same cell, is exactly the anchor that overlaps
    # anchor 4 most: B's best anchor is its own, and anchor 4 is B's extra match, in the slot A holds
    overlaps = _iou(targets.anchor_corners, targets.anchor_corners[4:5])[:, 0]
    overlaps[4] = 0
    other = int(overlaps.argmax())
    assert overlaps[other] >= 0.3
    centre = np.array([150.0, 110.0])
    boxes = np.array([[*(centre - half), *(centre + half)] for half in targets.anchors[[4, other]] / 2], np.float32)

    _, scale = _positives(targets(WIDTH, HEIGHT, boxes, gt_ids=np.zeros((2, 1), np.float32)))

    # anchor 4's slot keeps A's target (log 1 = 0), never B's, whichever order the boxes come in
    bs_target = np.log(targets.anchors[other, 0] / targets.anchors[4, 0])
    assert not np.isclose(scale[:, 0], bs_target, atol=1e-5).any()
    _, swapped = _positives(targets(WIDTH, HEIGHT, boxes[::-1].copy(), gt_ids=np.zeros((2, 1), np.float32)))
    assert not np.isclose(swapped[:, 0], bs_target, atol=1e-5).any()
    assert sorted(swapped[:, 0]) == pytest.approx(sorted(scale[:, 0]))

"""The NumPy YOLOv3 targets (detector.targets) against GluonCV's generator: the same values, for random boxes of
every size, padding rows, mixup ratios and several classes."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from detector import model, transforms
from detector.targets import Targets

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

    found = Targets(t._anchors, t._offsets, t._feat_maps, 3)(WIDTH, HEIGHT, boxes, ids, mix)

    for ours, theirs in zip(found, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs[0].asnumpy())

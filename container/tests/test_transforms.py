"""The NumPy training transform (detector.transforms) against GluonCV's functions in GluonCV's order, from the same
random state: the same crop, flips, boxes and targets, the same image to float rounding, and the same random
numbers consumed."""

from __future__ import annotations

import random
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from detector import batches, model, transforms
from detector.arrays import Array
from detector.model import objects_in
from gluoncv.data import MixupDetection
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import experimental
from gluoncv.data.transforms import image as timage

WIDTH, HEIGHT = 160, 96


def gluoncv_chain(t: transforms.TrainTransform, src: mx.nd.NDArray, label: Array) -> tuple[Array, ...]:
    """What the transform did with GluonCV's NDArray functions (random_color_distort on the source image first)."""
    bbox = objects_in(label)
    img = experimental.image.random_color_distort(src)
    if t._random_expand and np.random.uniform(0, 1) > 0.5:
        img, expand = timage.random_expand(img, fill=[m * 255 for m in t._mean])
        bbox = tbbox.translate(bbox, x_offset=expand[0], y_offset=expand[1])
    h, w, _ = img.shape
    if len(bbox):
        bbox, crop = experimental.bbox.random_crop_with_constraints(bbox, (w, h))
        img = mx.image.fixed_crop(img, *crop)
    h, w, _ = img.shape
    img = timage.imresize(img, t._width, t._height, interp=np.random.randint(0, 5))
    bbox = tbbox.resize(bbox, (w, h), (t._width, t._height))
    img, flips = timage.random_flip(img, px=0.5, py=0.5)
    bbox = tbbox.flip(bbox, (t._width, t._height), flip_x=flips[0], flip_y=flips[1])
    img = mx.nd.image.normalize(mx.nd.image.to_tensor(img), mean=t._mean, std=t._std)
    if not len(bbox):
        bbox = transforms.PADDING if not t._mixup else np.full((1, 6), -1.0, np.float32)
    bbox = bbox.astype(np.float32)
    mixratio = bbox[:, -1:] if t._mixup else None
    targets = t._targets(t._width, t._height, bbox[:, :4], gt_ids=bbox[:, 4:5], gt_mixratio=mixratio)
    return (img.asnumpy(), *targets, bbox[:, :4])


def photograph(seed: int) -> tuple[Array, Array]:
    """A random 3-channel image of random size and 0-4 boxes of every size ([xmin, ymin, xmax, ymax, cls])."""
    generator = np.random.default_rng(seed)
    height, width = int(generator.integers(60, 240)), int(generator.integers(60, 320))
    image = generator.integers(0, 256, (height, width, 3), dtype=np.uint8)
    count = int(generator.integers(0, 5))
    corners = generator.uniform(0, 0.8, (count, 2)) * [width, height]
    sizes = generator.choice([1.0, 3.0, 20.0, 80.0], (count, 2))
    boxes = np.concatenate([corners, np.minimum(corners + sizes, [width - 1, height - 1])], axis=1)
    label = np.column_stack([boxes, np.zeros(count)]).astype(np.float32) if count else np.full((1, 5), -1.0, np.float32)
    return image, label


def seeded(seed: int) -> None:
    np.random.seed(seed)
    random.seed(seed)


def after() -> tuple[float, float]:
    """The next draw of each generator: equal when both ways consumed the same numbers."""
    return float(np.random.random()), random.random()


@pytest.fixture(scope="module")
def net() -> object:
    return model.build("mobilenet0.25", ("scratch", "dent"))


@pytest.mark.parametrize("random_expand", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_the_transform_is_gluoncvs_chain(net: object, seed: int, random_expand: bool) -> None:
    t = transforms.TrainTransform(WIDTH, HEIGHT, net, random_expand=random_expand)
    image, label = photograph(seed)
    seeded(seed)
    expected, expected_next = gluoncv_chain(t, mx.nd.array(image, dtype=np.uint8), label), after()
    seeded(seed)
    found, found_next = t(image, label), after()

    assert found_next == expected_next
    assert found[0].shape == (3, HEIGHT, WIDTH)
    np.testing.assert_allclose(found[0], expected[0], atol=2e-4, rtol=0)
    for ours, theirs in zip(found[1:], expected[1:], strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", range(40))
def test_the_crop_is_gluoncvs_crop_with_constraints(seed: int) -> None:
    image, label = photograph(seed)
    boxes = objects_in(label)
    height, width, _ = image.shape
    seeded(seed)
    expected = experimental.bbox.random_crop_with_constraints(boxes, (width, height)), after()
    seeded(seed)
    found = transforms.random_crop(boxes, width, height), after()

    assert found[0][1] == expected[0][1]
    np.testing.assert_array_equal(found[0][0], expected[0][0])
    assert found[1] == expected[1]


def test_records_and_mixup_are_gluoncvs(splits: Path, net: object) -> None:
    rec = next((splits / "processing" / "output" / "train").glob("*.rec"))
    ours, theirs = batches.Records(rec), model.records(rec)
    assert len(ours) == len(theirs)
    for index in range(len(ours)):
        image, label = ours[index]
        expected_image, expected_label = theirs[index]
        np.testing.assert_array_equal(image, expected_image.asnumpy())
        np.testing.assert_array_equal(label, expected_label)

    t = transforms.TrainTransform(WIDTH, HEIGHT, net, mixup=True)
    examples = batches.Examples(ours, t, mixup=True)
    mixed = MixupDetection(theirs)
    mixed.set_mixup(np.random.beta, *batches.MIXUP_BETA)
    for seed in range(6):
        item = batches.Item(seed % len(ours), seed, mixup=True)
        found = examples[item]
        seeded(seed)
        expected = gluoncv_chain(t, *mixed[item.index])
        np.testing.assert_allclose(found[0], expected[0], atol=2e-4, rtol=0)
        for a, b in zip(found[1:], expected[1:], strict=True):
            np.testing.assert_array_equal(a, b)

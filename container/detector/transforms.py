"""YOLOv3's data transforms: training (augmentation and targets) and validation (resize and normalise).

The training transform is GluonCV's YOLOv3 augmentation (YOLO3DefaultTrainTransform, with the changes below),
computed in NumPy and OpenCV on the decoded uint8 image. It draws the same random numbers in the same order as
GluonCV's functions, so for one random state it gives GluonCV's result to float rounding
(tests/test_transforms.py), in a fraction of the time.

GluonCV's colour distortion (brightness, contrast, saturation, hue) is a chain of affine maps of each pixel's
RGB, applied without clipping, and so is the normalisation. They commute with cropping, with flipping and with
resizing (interpolation weights sum to one), so they are composed into one 3x3 matrix and offset and applied once,
to the network-sized image instead of the source photograph.
"""

from __future__ import annotations

import math
import random
from typing import Any

import cv2
import mxnet as mx
import numpy as np
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import image as timage
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform

from detector.arrays import Array
from detector.model import MEAN, STD, objects_in
from detector.targets import Targets

PADDING = np.full((1, 5), -1.0, np.float32)  # GluonCV's padding row: no object
GRAY = np.array([0.299, 0.587, 0.114])
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
RGB_FROM_YIQ = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.107, 1.705]])


class Affine:
    """x -> x @ matrix + offset on row-vector RGB pixels, composed one map after another."""

    def __init__(self) -> None:
        self.matrix = np.eye(3)
        self.offset = np.zeros(3)

    def then(self, matrix: Array, offset: Array | float = 0.0) -> None:
        self.matrix = self.matrix @ matrix
        self.offset = self.offset @ matrix + offset

    def apply(self, image: Array) -> Array:
        """An (H, W, 3) image mapped pixel by pixel, in float32."""
        flat = image.reshape(-1, 3) @ self.matrix.astype(np.float32) + self.offset.astype(np.float32)
        result: Array = flat.reshape(image.shape)
        return result


def color_distortion(
    *,
    brightness_delta: float = 32,
    contrast: tuple[float, float] = (0.5, 1.5),
    saturation: tuple[float, float] = (0.5, 1.5),
    hue_delta: float = 18,
) -> Affine:
    """GluonCV's `experimental.image.random_color_distort` as the affine map it is, from the same draws in the same
    order (np.random, and Python's random for the hue angle)."""
    affine = Affine()

    def brightness() -> None:
        if np.random.uniform(0, 1) > 0.5:
            affine.then(np.eye(3), np.random.uniform(-brightness_delta, brightness_delta))

    def contrast_() -> None:
        if np.random.uniform(0, 1) > 0.5:
            affine.then(np.random.uniform(*contrast) * np.eye(3))

    def saturation_() -> None:
        if np.random.uniform(0, 1) > 0.5:
            alpha = np.random.uniform(*saturation)
            affine.then(alpha * np.eye(3) + (1.0 - alpha) * np.outer(GRAY, np.ones(3)))

    def hue() -> None:
        if np.random.uniform(0, 1) > 0.5:
            alpha = random.uniform(-hue_delta, hue_delta)  # noqa: S311 (augmentation, not a secret)
            u, w = np.cos(alpha * np.pi), np.sin(alpha * np.pi)
            rotation = np.array([[1.0, 0.0, 0.0], [0.0, u, -w], [0.0, w, u]])
            affine.then((RGB_FROM_YIQ @ rotation @ YIQ).T)

    brightness()
    if np.random.randint(0, 2):
        contrast_()
        saturation_()
        hue()
    else:
        saturation_()
        hue()
        contrast_()
    return affine


CROP_CONSTRAINTS = ((0.1, math.inf), (0.3, math.inf), (0.5, math.inf), (0.7, math.inf), (0.9, math.inf), (-math.inf, 1))


def random_crop(
    bbox: Array, width: int, height: int, *, max_trial: int = 50
) -> tuple[Array, tuple[int, int, int, int]]:
    """GluonCV's `experimental.bbox.random_crop_with_constraints` (SSD's crop: at least one trial crop per minimum
    IoU with every box, then one of them at random), from the same draws in the same order. Its per-trial NumPy
    IoU on a handful of boxes cost ~13 ms an image; the same float64 arithmetic in plain Python costs ~1 ms."""
    boxes = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in bbox]
    candidates = [(0, 0, width, height)]
    for min_iou, max_iou in CROP_CONSTRAINTS:
        for _ in range(max_trial):
            scale = random.uniform(0.3, 1)  # noqa: S311 (augmentation, not a secret)
            aspect_ratio = random.uniform(max(1 / 2, scale * scale), min(2, 1 / (scale * scale)))  # noqa: S311
            crop_h = int(height * scale / math.sqrt(aspect_ratio))
            crop_w = int(width * scale * math.sqrt(aspect_ratio))
            crop_t = random.randrange(height - crop_h)  # noqa: S311
            crop_l = random.randrange(width - crop_w)  # noqa: S311
            if not boxes:
                return bbox, (crop_l, crop_t, crop_w, crop_h)
            ious = [_iou(box, (crop_l, crop_t, crop_l + crop_w, crop_t + crop_h)) for box in boxes]
            if min_iou <= min(ious) and max(ious) <= max_iou:
                candidates.append((crop_l, crop_t, crop_w, crop_h))
                break
    while candidates:
        crop = candidates.pop(np.random.randint(0, len(candidates)))
        cropped = tbbox.crop(bbox, crop, allow_outside_center=False)
        if cropped.size >= 1:
            return cropped, crop
    return bbox, (0, 0, width, height)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """gluoncv.utils.bbox.bbox_iou of two corner boxes (offset 0), in the same float64 operations."""
    left, top, right, bottom = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = (right - left) * (bottom - top) * (left < right and top < bottom)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class TrainTransform(YOLO3DefaultTrainTransform):  # type: ignore[misc]
    """GluonCV's YOLOv3 augmentation, with random expansion optional and images without scratches allowed.

    Zooming out (GluonCV always does it, p=0.5) shrinks 1-3 px scratches below a pixel: off by default. Vertical
    flips are added, since a scratch looks the same upside down. Takes an (H, W, 3) uint8 RGB image (NumPy or
    NDArray) and its (N, 5) or, with mixup, (N, 6) label; returns NumPy arrays: the (3, height, width) normalised
    image, the five YOLOv3 targets and the (M, 4) boxes.
    """

    def __init__(
        self,
        width: int,
        height: int,
        net: Any,
        *,
        mixup: bool = False,
        random_expand: bool = False,
        match_iou: float = 1.0,
    ) -> None:
        super().__init__(width, height, net, mean=MEAN, std=STD, mixup=mixup)
        self._random_expand = random_expand
        self._num_classes = len(net.classes)
        self._numpy_targets: Targets | None = None
        self._match_iou = match_iou
        scale = 1.0 / (255.0 * np.array(STD))
        self._normalise = (np.diag(scale), -np.array(MEAN) / np.array(STD))

    def __call__(self, src: Array | mx.nd.NDArray, label: Array) -> tuple[Array, ...]:
        image = src.asnumpy() if isinstance(src, mx.nd.NDArray) else src
        bbox = objects_in(label)
        colour = color_distortion()
        if self._random_expand and np.random.uniform(0, 1) > 0.5:
            # zooming out fills with the undistorted mean colour: distort before, as GluonCV does
            expanded, expand = timage.random_expand(
                mx.nd.array(colour.apply(image.astype(np.float32))), fill=[m * 255 for m in self._mean]
            )
            image, colour = expanded.asnumpy(), Affine()
            bbox = tbbox.translate(bbox, x_offset=expand[0], y_offset=expand[1])
        h, w, _ = image.shape
        if len(bbox):
            bbox, (x0, y0, crop_w, crop_h) = random_crop(bbox, w, h)
            image = image[y0 : y0 + crop_h, x0 : x0 + crop_w]
        h, w, _ = image.shape
        interpolation = np.random.randint(0, 5)  # OpenCV's 0-4, as GluonCV's imresize passes them on
        image = cv2.resize(image.astype(np.float32), (self._width, self._height), interpolation=interpolation)
        bbox = tbbox.resize(bbox, (w, h), (self._width, self._height))
        flip_y = np.random.choice([False, True], p=[0.5, 0.5])  # GluonCV's random_flip: y drawn first
        flip_x = np.random.choice([False, True], p=[0.5, 0.5])
        image = image[:: -1 if flip_y else 1, :: -1 if flip_x else 1]
        bbox = tbbox.flip(bbox, (self._width, self._height), flip_x=flip_x, flip_y=flip_y)
        colour.then(*self._normalise)
        tensor = np.ascontiguousarray(colour.apply(np.ascontiguousarray(image)).transpose(2, 0, 1))
        if not len(bbox):
            bbox = PADDING if not self._mixup else np.full((1, 6), -1.0, np.float32)
        bbox = bbox.astype(np.float32)
        mixratio = bbox[:, -1:] if self._mixup else None
        targets = self._targets(self._width, self._height, bbox[:, :4], gt_ids=bbox[:, 4:5], gt_mixratio=mixratio)
        return (tensor, *targets, bbox[:, :4])

    def slots(self) -> tuple[Array, Array]:
        """Each target slot's anchor and cell size in pixels, in the predictions' order (detector.losses)."""
        return self._targets.slots(self._width, self._height)

    @property
    def _targets(self) -> Targets:
        """GluonCV's target generation, in NumPy (detector.targets): the same values, a fraction of the time."""
        if self._numpy_targets is None:
            self._numpy_targets = Targets(
                self._anchors, self._offsets, self._feat_maps, classes=self._num_classes, match_iou=self._match_iou
            )
        return self._numpy_targets


def val_transform(width: int, height: int) -> YOLO3DefaultValTransform:
    return YOLO3DefaultValTransform(width, height, mean=MEAN, std=STD)

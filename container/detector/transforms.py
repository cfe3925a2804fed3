"""YOLOv3's data transforms: training (augmentation and targets) and validation (resize and normalise)."""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.data.transforms import bbox as tbbox
from gluoncv.data.transforms import experimental
from gluoncv.data.transforms import image as timage
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform, YOLO3DefaultValTransform

from detector.arrays import Array
from detector.model import MEAN, STD, objects_in
from detector.targets import Targets

PADDING = np.full((1, 5), -1.0, np.float32)  # GluonCV's padding row: no object


class TrainTransform(YOLO3DefaultTrainTransform):  # type: ignore[misc]
    """GluonCV's YOLOv3 augmentation, with random expansion optional and images without scratches allowed.

    Zooming out (GluonCV always does it, p=0.5) shrinks 1-3 px scratches below a pixel: off by default. Vertical
    flips are added, since a scratch looks the same upside down.
    """

    def __init__(self, width: int, height: int, net: Any, mixup: bool = False, random_expand: bool = False) -> None:
        super().__init__(width, height, net, mean=MEAN, std=STD, mixup=mixup)
        self._random_expand = random_expand
        self._num_classes = len(net.classes)
        self._numpy_targets: Targets | None = None

    def __call__(self, src: mx.nd.NDArray, label: Array) -> tuple[mx.nd.NDArray, ...]:
        bbox = objects_in(label)
        img = experimental.image.random_color_distort(src)
        if self._random_expand and np.random.uniform(0, 1) > 0.5:
            img, expand = timage.random_expand(img, fill=[m * 255 for m in self._mean])
            bbox = tbbox.translate(bbox, x_offset=expand[0], y_offset=expand[1])
        h, w, _ = img.shape
        if len(bbox):
            bbox, crop = experimental.bbox.random_crop_with_constraints(bbox, (w, h))
            img = mx.image.fixed_crop(img, *crop)
        h, w, _ = img.shape
        img = timage.imresize(img, self._width, self._height, interp=np.random.randint(0, 5))
        bbox = tbbox.resize(bbox, (w, h), (self._width, self._height))
        img, flips = timage.random_flip(img, px=0.5, py=0.5)
        bbox = tbbox.flip(bbox, (self._width, self._height), flip_x=flips[0], flip_y=flips[1])
        img = mx.nd.image.normalize(mx.nd.image.to_tensor(img), mean=self._mean, std=self._std)
        if not len(bbox):
            bbox = PADDING if not self._mixup else np.full((1, 6), -1.0, np.float32)
        bbox = bbox.astype(np.float32)
        mixratio = bbox[:, -1:] if self._mixup else None
        targets = self._targets(self._width, self._height, bbox[:, :4], bbox[:, 4:5], mixratio)
        return (img, *(mx.nd.array(t) for t in targets), mx.nd.array(bbox[:, :4]))

    @property
    def _targets(self) -> Targets:
        """GluonCV's target generation, in NumPy (detector.targets): the same values, a fraction of the time."""
        if self._numpy_targets is None:
            self._numpy_targets = Targets(self._anchors, self._offsets, self._feat_maps, self._num_classes)
        return self._numpy_targets


def val_transform(width: int, height: int) -> YOLO3DefaultValTransform:
    return YOLO3DefaultValTransform(width, height, mean=MEAN, std=STD)

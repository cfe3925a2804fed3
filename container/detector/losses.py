"""YOLOv3's training loss: GluonCV's four terms and, with a weight above 0, a GIoU term on the boxes.

GluonCV learns a box as its centre's offset in the cell (logistic loss) and its size's log-ratio to the anchor
(L1): a one-pixel error costs the same whether the box is 40 px or 4 px across, though it halves the IoU of a
thin scratch's box and leaves a wide one's near 1. The GIoU term (1 - GIoU of the predicted and the target box at
every slot that learns a box; Rezatofighi et al., 2019) costs what evaluation counts: overlap. It is weighted
like GluonCV's box terms (the target's objectness, so mixup's ratio, times 2 - the box's share of the image).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gluoncv.loss import YOLOV3Loss

from detector.arrays import Array

MAX_LOG_SCALE = 8.0  # exp() of a wild early prediction stays finite (e^8 anchors is far beyond any image)


class GIoUYOLOV3Loss(YOLOV3Loss):  # type: ignore[misc]
    """Takes what GluonCV's YOLOV3Loss takes; returns its four losses and the weighted GIoU loss, per image.
    (A subclass: Gluon lets a network's child be replaced only by one of its own kind.)

    `anchors` and `strides` are each slot's anchor size and cell size in pixels, (N, 2), in the predictions'
    order (detector.targets.Targets.slots).
    """

    def __init__(self, anchors: Array, strides: Array, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._weight = float(weight)
        with self.name_scope():
            self.anchors = self.params.get_constant("anchors", anchors.reshape(1, -1, 2).astype(np.float32))
            self.strides = self.params.get_constant("strides", strides.reshape(1, -1, 2).astype(np.float32))

    def hybrid_forward(  # GluonCV's loss signature, then the constants
        self,
        F: Any,
        objness: Any,
        box_centers: Any,
        box_scales: Any,
        cls_preds: Any,
        objness_t: Any,
        center_t: Any,
        scale_t: Any,
        weight_t: Any,
        class_t: Any,
        class_mask: Any,
        anchors: Any,
        strides: Any,
    ) -> tuple[Any, ...]:
        losses = super().hybrid_forward(
            F, objness, box_centers, box_scales, cls_preds, objness_t, center_t, scale_t, weight_t, class_t, class_mask
        )
        # both boxes about the slot's cell corner, in pixels: the cell's offset cancels out of every IoU
        predicted = _corners(
            F,
            F.broadcast_mul(F.sigmoid(box_centers), strides),
            F.broadcast_mul(F.exp(F.clip(box_scales, -MAX_LOG_SCALE, MAX_LOG_SCALE)), anchors),
        )
        target = _corners(
            F,
            F.broadcast_mul(center_t, strides),
            F.broadcast_mul(F.exp(F.clip(scale_t, -MAX_LOG_SCALE, MAX_LOG_SCALE)), anchors),
        )
        weight = F.broadcast_mul(weight_t.slice_axis(axis=-1, begin=0, end=1), F.relu(objness_t))
        giou = generalized_iou(F, predicted, target)
        box_loss = F.sum(F.broadcast_mul(1 - giou, weight), axis=(1, 2)) * self._weight
        return (*losses, box_loss)


def _corners(F: Any, centre: Any, size: Any) -> Any:
    half = size * 0.5
    return F.concat(centre - half, centre + half, dim=-1)


def generalized_iou(F: Any, a: Any, b: Any) -> Any:
    """GIoU of corner boxes (..., 4) pairwise along the last axis: IoU minus the empty share of the smallest box
    holding both; (..., 1), from -1 to 1."""
    a_min, a_max = a.slice_axis(axis=-1, begin=0, end=2), a.slice_axis(axis=-1, begin=2, end=4)
    b_min, b_max = b.slice_axis(axis=-1, begin=0, end=2), b.slice_axis(axis=-1, begin=2, end=4)
    overlap = F.relu(F.broadcast_minimum(a_max, b_max) - F.broadcast_maximum(a_min, b_min))
    intersection = _area(overlap)
    union = _area(a_max - a_min) + _area(b_max - b_min) - intersection
    hull = _area(F.broadcast_maximum(a_max, b_max) - F.broadcast_minimum(a_min, b_min))
    return intersection / union - (hull - union) / hull


def _area(size: Any) -> Any:
    """width x height, (..., 1). Not F.prod: its gradient divides by each factor, NaN where boxes do not meet."""
    return size.slice_axis(axis=-1, begin=0, end=1) * size.slice_axis(axis=-1, begin=1, end=2)


def install(net: Any, anchors: Array, strides: Array, *, weight: float) -> None:
    """Train `net` (a GluonCV YOLOV3) on the GIoU loss; call before it is hybridized and moved to its devices."""
    loss = GIoUYOLOV3Loss(anchors, strides, weight, prefix="giou_loss_")
    loss.initialize()
    net._loss = loss

"""YOLOv3's training targets that need no prediction (objectness, centre, scale, weights, class), in NumPy. With
match_iou 1 they are what GluonCV's YOLOV3PrefetchTargetGenerator computes for one image, value for value, without
its element-by-element NDArray writes (each an engine operation: 43% of a training image's preparation); lower, every
anchor whose shape overlaps a box that much learns it too."""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.arrays import Array


class Targets:
    def __init__(
        self, anchors: list[Any], offsets: list[Any], feature_maps: list[Any], *, classes: int, match_iou: float = 1.0
    ) -> None:
        self.anchors = np.concatenate([a.asnumpy().reshape(-1, 2) for a in anchors]).astype(np.float32)
        self.num_anchors = np.cumsum([a.size // 2 for a in anchors])
        self.num_offsets = np.cumsum([o.size // 2 for o in offsets])
        self.grids = [(int(x.shape[2]), int(x.shape[3])) for x in feature_maps]
        self.classes = classes
        self.match_iou = match_iou
        half = self.anchors * np.float32(0.5)
        self.anchor_corners = np.concatenate([-half, half], axis=1)  # zero-centred, as GluonCV's bbox2corner gives

    def __call__(
        self, width: int, height: int, gt_boxes: Array, *, gt_ids: Array, gt_mixratio: Array | None = None
    ) -> tuple[Array, Array, Array, Array, Array]:
        """Targets for one image of `width` x `height` (the network's input) with boxes (M, 4) in its pixels,
        ids (M, 1) and optional mixup ratios (M, 1); padding rows (negative corners) end the boxes."""
        cells, count = int(self.num_offsets[-1]), len(self.anchors)
        center = np.zeros((cells, count, 2), np.float32)
        scale = np.zeros_like(center)
        weights = np.zeros_like(center)
        objectness = np.zeros((cells, count, 1), np.float32)
        class_targets = np.full((cells, count, self.classes), -1.0, np.float32)
        boxes = gt_boxes.astype(np.float32)
        gtw = boxes[:, 2:3] - boxes[:, 0:1]
        gth = boxes[:, 3:4] - boxes[:, 1:2]
        gtx = boxes[:, 0:1] + gtw * np.float32(0.5)
        gty = boxes[:, 1:2] + gth * np.float32(0.5)
        shifted = np.concatenate([np.float32(-0.5) * gtw, np.float32(-0.5) * gth, np.float32(0.5) * gtw,
                                  np.float32(0.5) * gth], axis=1)  # fmt: skip
        overlaps = _iou(self.anchor_corners, shifted)  # (anchors, M)
        best = overlaps.argmax(axis=0)  # (M,): the best anchor of each box
        valid = (boxes >= 0).prod(axis=-1)
        count_valid = int(np.argmin(valid)) if valid.min() < 1 else len(boxes)
        pairs = [
            (int(a), int(m))
            for a, m in zip(*np.nonzero(overlaps[:, :count_valid] >= self.match_iou), strict=True)
            if a != best[m]
        ]  # more anchors for a box (YOLOv4's iou_thresh), written first: a box's best anchor overrides them
        pairs += [(int(best[m]), m) for m in range(count_valid)]
        starts = [0, *self.num_offsets.tolist()]
        for match, m in pairs:
            layer = int(np.nonzero(self.num_anchors > match)[0][0])
            rows, columns = self.grids[layer]
            x, y, w, h = gtx[m, 0], gty[m, 0], gtw[m, 0], gth[m, 0]
            loc_x = int(x / width * columns)
            loc_y = int(y / height * rows)
            index = starts[layer] + loc_y * columns + loc_x
            center[index, match, 0] = x / width * columns - loc_x
            center[index, match, 1] = y / height * rows - loc_y
            scale[index, match, 0] = np.log(max(w, 1) / self.anchors[match, 0])
            scale[index, match, 1] = np.log(max(h, 1) / self.anchors[match, 1])
            weights[index, match, :] = 2.0 - w * h / width / height
            objectness[index, match, 0] = gt_mixratio[m, 0] if gt_mixratio is not None else 1
            class_targets[index, match, :] = 0
            class_targets[index, match, int(gt_ids[m, 0])] = 1
        return tuple(self._slice(a) for a in (objectness, center, scale, weights, class_targets))  # type: ignore[return-value]

    def slots(self, width: int, height: int) -> tuple[Array, Array]:
        """Each target slot's anchor size and cell size in pixels, (N, 2) each, in the targets' order."""
        anchors, strides = [], []
        starts = [0, *self.num_anchors.tolist()]
        for layer, (rows, columns) in enumerate(self.grids):
            own = self.anchors[starts[layer] : starts[layer + 1]]
            anchors.append(np.tile(own, (rows * columns, 1)))
            strides.append(
                np.tile(np.array([width / columns, height / rows], np.float32), (rows * columns * len(own), 1))
            )
        return np.concatenate(anchors), np.concatenate(strides)

    def _slice(self, values: Array) -> Array:
        """Each layer's cells with its own anchors only, as GluonCV's generator slices them."""
        anchors, offsets = [0, *self.num_anchors.tolist()], [0, *self.num_offsets.tolist()]
        parts = [
            values[offsets[i] : offsets[i + 1], anchors[i] : anchors[i + 1], :].reshape(-1, values.shape[-1])
            for i in range(len(self.num_anchors))
        ]
        return np.concatenate(parts, axis=0)


def _iou(a: Array, b: Array) -> Array:
    """(len(a), len(b)) IoU of corner boxes, as MXNet's contrib.box_iou computes it (no +1)."""
    width = np.maximum(0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    height = np.maximum(0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    intersection = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0).astype(np.float32)

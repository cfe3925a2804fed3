"""The validation split during training: its mAP@0.5 each epoch, and every image's detections for the score
threshold."""

from __future__ import annotations

import math
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
from mxnet import gluon

from detector import model
from detector.arrays import Array


def inference_graph(net: Any) -> gluon.SymbolBlock:
    """The network's inference graph (NMS set, as exported) on the training network's own parameters, hybridized.

    Switching one network between training and inference discards its graph and static memory each time, and
    the next call rebuilds them: validating every epoch cost two rebuilds an epoch. This block keeps its own graph
    and the network its training graph. Make it before the network's training graph (NMS settings clear it).
    """
    model.set_inference(net)
    data = mx.sym.var("data")
    block = gluon.SymbolBlock(list(net(data)), data, params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def validate(net: Any, loader: gluon.data.DataLoader, classes: tuple[str, ...], ctx: mx.Context) -> float:
    """mAP@0.5 on the validation split, on the first device, from an inference network (inference_graph)."""
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(classes))
    for data, label in loader:
        ids, scores, boxes = net(data.as_in_context(ctx))
        label = label.as_in_context(ctx)
        metric.update(
            model.clip_boxes(boxes, data.shape[3], data.shape[2]),
            ids,
            scores,
            label.slice_axis(axis=-1, begin=0, end=4),
            label.slice_axis(axis=-1, begin=4, end=5),
        )
    _, values = metric.get()
    value = float(values[-1])
    return 0.0 if math.isnan(value) else value


def validation_detections(net: Any, loader: gluon.data.DataLoader, ctx: mx.Context) -> list[tuple[Array, Array]]:
    """Every validation image's detections ((M, 6) corners, score, class id) and boxes ((N, 5) corners, class id),
    from a network in inference mode (NMS set, as exported), its graph built anew (parameters may have moved)."""
    net.hybridize(static_alloc=True, static_shape=True)
    images = []
    for data, label in loader:
        ids, scores, boxes = net(data.as_in_context(ctx))
        boxes = model.clip_boxes(boxes, data.shape[3], data.shape[2])
        for ids_i, scores_i, boxes_i, label_i in zip(
            ids.asnumpy(), scores.asnumpy(), boxes.asnumpy(), label.asnumpy(), strict=True
        ):
            kept = ids_i[:, 0] >= 0
            detections = np.column_stack([boxes_i[kept], scores_i[kept, 0], ids_i[kept, 0]])
            images.append((detections, model.objects_in(label_i)[:, :5]))
    return images

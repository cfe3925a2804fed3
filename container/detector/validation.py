"""The validation split during training: its mAP@0.5 after the epochs that validate, and the score threshold that
fits the exported model (the best F1 over every image's detections)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import mxnet as mx
import numpy as np
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
from mxnet import gluon

from detector import hyperparameters, jobs, model, thresholds
from detector.arrays import Array

log = logging.getLogger("detector.train")


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


def validate(net: Any, loader: gluon.data.DataLoader, *, classes: tuple[str, ...], ctx: mx.Context) -> float:
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


@dataclass(frozen=True, kw_only=True)
class Validator:
    """The validation of one training job; without a validation split (or on a host that does not write the
    model), it validates nothing."""

    graph: gluon.SymbolBlock | None
    loader: gluon.data.DataLoader | None
    classes: tuple[str, ...]
    ctx: mx.Context
    interval: int  # validate after every `interval`-th epoch, and after the last
    epochs: int

    @classmethod
    def make(
        cls, net: Any, loader: gluon.data.DataLoader | None, hp: hyperparameters.Hyperparameters, *, ctx: mx.Context
    ) -> Validator:
        """Validation's own graph on the network's parameters: make it before the training graph (inference_graph)."""
        graph = inference_graph(net) if loader is not None else None
        return cls(graph=graph, loader=loader, classes=hp.classes, ctx=ctx, interval=hp.val_interval, epochs=hp.epochs)

    def after_epoch(self, number: int) -> tuple[float | None, float]:
        """The mAP@0.5 after epoch `number` (None when this epoch does not validate) and the seconds it took."""
        validating = number % self.interval == 0 or number == self.epochs
        validated = time.monotonic()
        val_map = None
        if validating and self.loader is not None and self.graph is not None:
            val_map = validate(self.graph, self.loader, classes=self.classes, ctx=self.ctx)
        return val_map, time.monotonic() - validated

    def threshold(self) -> dict[str, Any]:
        """The model metadata's score threshold that fits this model, the best F1 at IoU 0.5 on the validation
        split, with that F1 (nothing when there is no validation split or no threshold finds a box). The graph
        is rebuilt on the CPU: call it once the exported weights are in place."""
        if self.loader is None:
            return {}
        chosen = thresholds.choose(validation_detections(self.graph, self.loader, mx.cpu()), len(self.classes))
        if chosen is None:
            return {}
        meta: dict[str, Any] = {"score_threshold": round(chosen.threshold, 6)}
        meta["validation_f1"] = {
            "f1": round(chosen.f1, 6), "precision": round(chosen.precision, 6), "recall": round(chosen.recall, 6)
        }  # fmt: skip
        jobs.event(log, "score threshold chosen", threshold=meta["score_threshold"], f1=round(chosen.f1, 4))
        return meta

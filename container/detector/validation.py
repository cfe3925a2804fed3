"""The validation split during training: its mAP@0.5 after the epochs that validate, and the NMS and score
thresholds that fit the exported model (the pair with the best F1 over every image's detections)."""

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

from detector import hyperparameters, jobs, model, nms
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
        images += _per_image(ids, scores, boxes, label=label, shape=data.shape)
    return images


def unsuppressed_graph(net: Any) -> gluon.SymbolBlock:
    """The network's inference graph without NMS, on its parameters, hybridized (it clears the network's graph)."""
    model.set_unsuppressed(net)
    data = mx.sym.var("data")
    block = gluon.SymbolBlock(list(net(data)), data, params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    return block


def suppressed_detections(
    graph: gluon.SymbolBlock, loader: gluon.data.DataLoader, grid: tuple[float, ...]
) -> dict[float, list[tuple[Array, Array]]]:
    """validation_detections at each NMS threshold of `grid`, from one pass of the unsuppressed graph (on the CPU)
    and GluonCV's NMS applied to its output at each threshold."""
    found: dict[float, list[tuple[Array, Array]]] = {iou: [] for iou in grid}
    for data, label in loader:
        result = mx.nd.concat(*graph(data.as_in_context(mx.cpu())), dim=-1)
        for iou in grid:
            kept = model.suppress(result, iou)
            ids, scores, boxes = (kept.slice_axis(axis=-1, begin=b, end=e) for b, e in ((0, 1), (1, 2), (2, None)))
            found[iou] += _per_image(ids, scores, boxes, label=label, shape=data.shape)
    return found


def _per_image(
    ids: mx.nd.NDArray, scores: mx.nd.NDArray, boxes: mx.nd.NDArray, *, label: mx.nd.NDArray, shape: tuple[int, ...]
) -> list[tuple[Array, Array]]:
    """A batch's detections (boxes clipped to the image) and boxes, image by image."""
    boxes = model.clip_boxes(boxes, shape[3], shape[2])
    images = []
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

    def thresholds(self, net: Any) -> dict[str, Any]:
        """The model metadata's NMS and score thresholds that fit this model (`net`, its exported weights in place,
        on the CPU): the pair with the best F1 at IoU 0.5 on the validation split (detector.nms), that F1, and
        where the NMS threshold came from (GluonCV's 0.45 without a validation split, or when no pair finds a box;
        then no score threshold). It clears the network's graph: export rebuilds it."""
        if self.loader is None:
            jobs.event(log, "no validation split: NMS threshold stays GluonCV's", nms_threshold=nms.GLUONCV_DEFAULT)
            return {"nms_threshold": nms.GLUONCV_DEFAULT, "nms_threshold_source": nms.NO_VALIDATION}
        started = time.monotonic()
        candidates = suppressed_detections(unsuppressed_graph(net), self.loader, nms.GRID)
        pair = nms.choose(candidates, len(self.classes))
        if pair is None:
            jobs.event(log, "no thresholds find a box: NMS stays GluonCV's", nms_threshold=nms.GLUONCV_DEFAULT)
            return {"nms_threshold": nms.GLUONCV_DEFAULT, "nms_threshold_source": nms.NOTHING_FOUND}
        chosen = pair.score
        meta: dict[str, Any] = {"score_threshold": round(chosen.threshold, 6)}
        meta["validation_f1"] = {
            "f1": round(chosen.f1, 6), "precision": round(chosen.precision, 6), "recall": round(chosen.recall, 6)
        }  # fmt: skip
        meta |= {"nms_threshold": pair.nms_threshold, "nms_threshold_source": nms.CHOSEN}
        meta["nms_default_f1"] = None if pair.default_f1 is None else round(pair.default_f1, 6)
        jobs.event(
            log, "thresholds chosen", nms_threshold=pair.nms_threshold, score_threshold=meta["score_threshold"],
            f1=round(chosen.f1, 4), f1_at_nms_default=meta["nms_default_f1"],
            seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        return meta

"""The YOLOv3 network, its RecordIO datasets and its exported form, shared by train, evaluate and serve."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import mxnet as mx
from gluoncv import model_zoo
from gluoncv.data import RecordFileDetection
from gluoncv.model_zoo.yolo.yolo_target import YOLOV3TargetMerger

from detector import hyperparameters, jobs, nms
from detector.arrays import Array

# the backbones a job may name (GluonCV's yolo3_<backbone>_custom), as the one declaration lists them
BACKBONES: tuple[str, ...] = tuple(hyperparameters.declared()["backbone"]["enum"])
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
NMS_THRESHOLD = nms.GLUONCV_DEFAULT
NMS_OFF = 0.0  # GluonCV's YOLOV3 applies box_nms only when 0 < nms_thresh < 1
NMS_TOPK = 400
POST_NMS = 100
SYMBOL_PREFIX = "model"
META_FILE = "model-meta.json"


def build(backbone: str, classes: tuple[str, ...]) -> Any:
    """A freshly initialised YOLOv3 whose head predicts exactly `classes` (no pretrained weights: none offline)."""
    if backbone not in BACKBONES:
        raise jobs.JobError(f"backbone: {backbone!r} is not one of {', '.join(BACKBONES)}")
    net = model_zoo.get_model(f"yolo3_{backbone}_custom", classes=list(classes), pretrained_base=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "parameters already initialized" noise for the shared anchors
        net.initialize()
    return net


def set_training_targets(net: Any, ignore_iou: float, label_smoothing: bool) -> None:
    """The objectness targets training merges into the prefetched ones: a prediction that is no box's anchor but
    overlaps a box by more than `ignore_iou` is neither positive nor negative (GluonCV: 0.7, as darknet's
    yolov3.cfg; the YOLOv3 paper: 0.5), and the class targets are smoothed or not."""
    merger = YOLOV3TargetMerger(len(net.classes), ignore_iou)
    merger._label_smooth = label_smoothing  # no constructor argument: GluonCV's train_yolo3.py sets it so too
    net._ignore_iou_thresh = ignore_iou  # what reset_class would rebuild the merger with
    net._target_generator = merger


def set_inference(net: Any, nms_threshold: float = NMS_THRESHOLD) -> None:
    net.set_nms(nms_thresh=nms_threshold, nms_topk=NMS_TOPK, post_nms=POST_NMS)


def set_unsuppressed(net: Any) -> None:
    """Inference without NMS: every anchor's detection of every class, for `suppress` to apply any threshold."""
    net.set_nms(nms_thresh=NMS_OFF, nms_topk=NMS_TOPK, post_nms=POST_NMS)


def suppress(result: mx.nd.NDArray, nms_threshold: float) -> mx.nd.NDArray:
    """The NMS of GluonCV's YOLOV3.hybrid_forward (gluoncv/model_zoo/yolo/yolo3.py), with its arguments, on the
    (B, N, 6) rows [class id, score, corners] of an unsuppressed network: what its graph with NMS set at
    `nms_threshold` returns."""
    kept = mx.nd.contrib.box_nms(
        result, overlap_thresh=nms_threshold, valid_thresh=0.01, topk=NMS_TOPK, id_index=0, score_index=1,
        coord_start=2, force_suppress=False,
    )  # fmt: skip
    return kept.slice_axis(axis=1, begin=0, end=POST_NMS)


def clip_boxes(boxes: mx.nd.NDArray, width: int, height: int) -> mx.nd.NDArray:
    """Predicted corners clipped to the image: x to its width, y to its height."""
    limits = mx.nd.array([width, height, width, height], ctx=boxes.context).reshape((1, 1, 4))
    return mx.nd.broadcast_minimum(mx.nd.maximum(boxes, 0), limits)


def find_rec(folder: Path, what: str) -> Path | None:
    """The one `.rec` file of a channel or input folder (None when the folder is absent or empty)."""
    if not folder.is_dir():
        return None
    found = sorted(folder.rglob("*.rec"))
    if len(found) > 1:
        raise jobs.JobError(f"{what}: expected one .rec file in {folder}, found {len(found)}")
    return found[0] if found else None


def records(path: Path) -> RecordFileDetection:
    """A detection dataset over `path`; labels are [xmin, ymin, xmax, ymax, cls] in pixels, padding cls -1."""
    return RecordFileDetection(str(path), coord_normalized=True)


def objects_in(label: Array) -> Array:
    rows: Array = label[label[:, 4] >= 0]
    return rows


def export(net: Any, folder: Path, meta: dict[str, Any], *, width: int, height: int) -> None:
    """symbol + params (NMS baked in at the metadata's `nms_threshold`, the graph built for `width` x `height`
    images) and the metadata evaluate needs, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    set_inference(net, nms.of_meta(meta)[0])
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros((1, 3, height, width)))
    net.export(str(folder / SYMBOL_PREFIX), epoch=0)
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_exported(folder: Path, *, nms_threshold: float | None = None) -> tuple[Any, dict[str, Any]]:
    """The exported network (a SymbolBlock) and its metadata; with `nms_threshold`, its graph's NMS set to that
    threshold instead of the one baked in (Evaluate measures every model's mAP at one NMS threshold)."""
    meta_path = folder / META_FILE
    symbol = folder / f"{SYMBOL_PREFIX}-symbol.json"
    params = folder / f"{SYMBOL_PREFIX}-0000.params"
    missing = [p.name for p in (meta_path, symbol, params) if not p.is_file()]
    if missing:
        raise jobs.JobError(f"model: {', '.join(missing)} missing from the model archive")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if nms_threshold is None:
            return mx.gluon.SymbolBlock.imports(str(symbol), ["data"], str(params)), meta
        graph = mx.sym.load_json(with_nms(symbol.read_text(encoding="utf-8"), nms_threshold))
        net = mx.gluon.SymbolBlock(graph, [mx.sym.var("data")])
        net.collect_params().load(str(params), ctx=mx.cpu())
    return net, meta


def with_nms(symbol_json: str, nms_threshold: float) -> str:
    """An exported symbol's JSON with every NMS of its graph (GluonCV's box_nms) at `nms_threshold`."""
    graph = json.loads(symbol_json)
    suppressions = [node for node in graph["nodes"] if node.get("op") == "_contrib_box_nms"]
    if not suppressions:
        raise jobs.JobError("model: its graph has no NMS (box_nms) to set")
    for node in suppressions:
        node.setdefault("attrs", {})["overlap_thresh"] = repr(float(nms_threshold))
    return json.dumps(graph)

"""A model archive read safely, and a model's figures on the test split: mAP@0.5 (VOC07), per-class AP, precision
and recall at its score threshold (detector.evaluate scores the new model and the champion with it).

mAP is measured with every model's NMS at GluonCV's 0.45 (MAP_NMS), whatever NMS threshold the model chose: the
gate and the comparison with the champion then judge how well each model ranks its detections, not the operating
point it chose, just as the score threshold does not move mAP. A low NMS threshold that suits one box per scratch
at the operating point also swallows a second scratch close to the first, which lowers mAP (a make run's model:
0.805 at its chosen 0.25, 0.880 at 0.45). Precision, recall and the picture count what the model serves: its own
NMS and score thresholds; `map_at_model_nms` reports the mAP at its own NMS as well."""

from __future__ import annotations

import math
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from detector import jobs

jobs.cpu_threads()  # before mxnet is imported

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from gluoncv.data.batchify import Pad, Stack, Tuple  # noqa: E402
from gluoncv.utils.metrics.voc_detection import VOC07MApMetric  # noqa: E402
from mxnet import gluon  # noqa: E402

from detector import model, nms, transforms  # noqa: E402
from detector.arrays import Array  # noqa: E402
from detector.matching import IOU, matches  # noqa: E402

DEFAULT_THRESHOLD = 0.5  # for a model without a threshold of its own (trained without a validation split)
MAP_NMS = nms.GLUONCV_DEFAULT  # the NMS threshold every model's mAP is measured at


@dataclass(frozen=True)
class Nets:
    """A model's graph as it serves (its own NMS), and, when that NMS is not MAP_NMS, the same weights at MAP_NMS."""

    serving: Any
    ranking: Any | None = None


@dataclass(frozen=True)
class Counting:
    """How detections are counted: the threshold override and floor, the test images to keep for the picture."""

    score_threshold: float | None  # an override
    score_threshold_floor: float
    grid: int
    batch_size: int


@dataclass(frozen=True)
class Scores:
    """One model's figures on the test split, at its own shape and threshold."""

    map: float  # at MAP_NMS
    map_at_model_nms: float
    per_class: dict[str, dict[str, Any]]
    images: int
    boxes: int
    detections: int
    threshold: float
    source: str
    nms_threshold: float  # baked into the model: what it serves and is counted with
    nms_source: str
    width: int
    height: int
    shown: list[tuple[int, Array]]

    @property
    def true_positives(self) -> int:
        return sum(int(entry["true_positives"]) for entry in self.per_class.values())

    @property
    def precision(self) -> float:
        return round(self.true_positives / self.detections, 6) if self.detections else 0.0

    @property
    def recall(self) -> float:
        return round(self.true_positives / self.boxes, 6) if self.boxes else 0.0


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract a model archive, refusing any member that is a link or device or would land outside `destination`."""
    if not archive.is_file():
        raise jobs.JobError(f"model: {archive} not found")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                name = PurePosixPath(member.name)
                if member.issym() or member.islnk():
                    raise jobs.JobError(f"model archive: member {member.name!r} is a link; refused")
                if not (member.isfile() or member.isdir()):
                    raise jobs.JobError(f"model archive: member {member.name!r} is not a regular file; refused")
                target = (destination / name).resolve()
                if name.is_absolute() or ".." in name.parts or not target.is_relative_to(destination.resolve()):
                    raise jobs.JobError(f"model archive: member {member.name!r} escapes the extraction folder; refused")
            tar.extractall(destination, members=members, filter="data")
    except tarfile.TarError as error:
        raise jobs.JobError(f"model archive {archive.name}: not a readable tar file ({error})") from None


def model_folder(extracted: Path) -> Path:
    """The folder of model-meta.json: the archive root, or the one folder it holds."""
    found = sorted(extracted.rglob(model.META_FILE))
    return found[0].parent if found else extracted


def load_model(archive: Path, folder: Path) -> tuple[Nets, dict[str, Any]]:
    """The exported network in a model archive (and at MAP_NMS when it chose another NMS), and its metadata."""
    safe_extract(archive, folder)
    found = model_folder(folder)
    serving, meta = model.load_exported(found)
    ranking = None
    if nms.of_meta(meta)[0] != MAP_NMS:
        ranking, _ = model.load_exported(found, nms_threshold=MAP_NMS)
    for net in (serving, ranking):
        if net is not None:
            net.hybridize(static_alloc=True, static_shape=True)
    return Nets(serving, ranking), meta


def read_test_split(folder: Path) -> Any:
    test_rec = model.find_rec(folder, "test input")
    if test_rec is None:
        raise jobs.JobError(f"test input: no .rec file in {folder}")
    test_set = model.records(test_rec)
    if len(test_set) == 0:
        raise jobs.JobError("test split is empty: nothing to evaluate")
    return test_set


def score(nets: Nets, meta: dict[str, Any], test_set: Any, *, counting: Counting) -> Scores:
    """mAP@0.5 (VOC07) over the test split at MAP_NMS and at the model's own NMS, and precision and recall at the
    model's own NMS and score threshold."""
    classes = tuple(meta["classes"])
    width, height = int(meta["data_width"]), int(meta["data_height"])
    threshold, source = score_threshold(counting, meta.get("score_threshold"))
    loader = gluon.data.DataLoader(
        test_set.transform(transforms.val_transform(width, height)),
        counting.batch_size,
        shuffle=False,
        batchify_fn=Tuple(Stack(), Pad(pad_val=-1)),
        last_batch="keep",
    )
    metric = VOC07MApMetric(iou_thresh=IOU, class_names=list(classes))
    served = VOC07MApMetric(iou_thresh=IOU, class_names=list(classes)) if nets.ranking is not None else metric
    counts = {name: {"true_positives": 0, "false_positives": 0, "false_negatives": 0, "boxes": 0} for name in classes}
    shown: list[tuple[int, Array]] = []
    index = 0
    for data, label in loader:
        ids, scores, boxes = _detect(nets.serving, data, width=width, height=height)
        _update(served, (ids, scores, boxes), label)
        if nets.ranking is not None:
            _update(metric, _detect(nets.ranking, data, width=width, height=height), label)
        for ids_i, scores_i, boxes_i, label_i in zip(
            ids.asnumpy(), scores.asnumpy(), boxes.asnumpy(), label.asnumpy(), strict=True
        ):
            keep = (ids_i[:, 0] >= 0) & (scores_i[:, 0] >= threshold)
            found = np.hstack([boxes_i[keep], scores_i[keep]])
            found_ids = ids_i[keep, 0]
            for class_id, name in enumerate(classes):
                truths = label_i[label_i[:, 4] == class_id, :4]
                hit, false, missed = matches(found[found_ids == class_id], truths)
                entry = counts[name]
                entry["true_positives"] += hit
                entry["false_positives"] += false
                entry["false_negatives"] += missed
                entry["boxes"] += len(truths)
            if len(shown) < counting.grid:
                shown.append((index, found))
            index += 1

    names, values = metric.get()
    map_at_model_nms = _number(served.get()[1][-1])
    average_precision = {name: _number(value) for name, value in zip(names[:-1], values[:-1], strict=True)}
    per_class = {}
    for name in classes:
        entry = counts[name]
        detected = entry["true_positives"] + entry["false_positives"]
        per_class[name] = {
            "ap": average_precision.get(name, 0.0),
            "precision": entry["true_positives"] / detected if detected else 0.0,
            "recall": entry["true_positives"] / entry["boxes"] if entry["boxes"] else 0.0,
            **entry,
        }
    nms_threshold, nms_source = nms.of_meta(meta)
    return Scores(
        map=_number(values[-1]),
        map_at_model_nms=map_at_model_nms,
        per_class=per_class,
        images=len(test_set),
        boxes=sum(entry["boxes"] for entry in counts.values()),
        detections=sum(entry["true_positives"] + entry["false_positives"] for entry in counts.values()),
        threshold=threshold,
        source=source,
        nms_threshold=nms_threshold,
        nms_source=nms_source,
        width=width,
        height=height,
        shown=shown,
    )


def _detect(net: Any, data: mx.nd.NDArray, *, width: int, height: int) -> tuple[Any, Any, Any]:
    """A batch's detections: class ids, scores and corners clipped to the image."""
    ids, scores, boxes = net(data.as_in_context(mx.cpu()))
    return ids, scores, model.clip_boxes(boxes, width, height)


def _update(metric: VOC07MApMetric, found: tuple[Any, Any, Any], label: mx.nd.NDArray) -> None:
    ids, scores, boxes = found
    metric.update(
        boxes, ids, scores, label.slice_axis(axis=-1, begin=0, end=4), label.slice_axis(axis=-1, begin=4, end=5)
    )


def score_threshold(counting: Counting, chosen: float | None) -> tuple[float, str]:
    """The threshold to count with and where it comes from: the override, the model's (at least the floor), or
    the default (at least the floor)."""
    if counting.score_threshold is not None:
        return counting.score_threshold, "override"
    if chosen is None:
        return max(DEFAULT_THRESHOLD, counting.score_threshold_floor), "default"
    if float(chosen) < counting.score_threshold_floor:
        return counting.score_threshold_floor, "floor"
    return float(chosen), "model"


def _number(value: float) -> float:
    """mAP of a set without boxes is undefined (NaN): reported as 0, the value no threshold accepts."""
    value = float(value)
    return 0.0 if math.isnan(value) else round(value, 6)

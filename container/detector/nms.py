"""The NMS IoU threshold that fits a model, chosen together with its score threshold on the validation split.

GluonCV's YOLOv3 suppresses, per class, a box that overlaps a higher-scored one by more than 0.45 IoU, a value
suited to VOC's objects. Two long thin boxes on one scratch overlap little (0.4 is common), so both survive and
the scratch is counted twice. For every IoU of GRID, the validation images' detections suppressed at that IoU get
their best score threshold (detector.thresholds: best F1 at IoU 0.5); the pair with the best F1 wins.

GRID runs from 0.2 to 0.7 in steps of 0.05 (GluonCV's 0.45 among them): below 0.2 NMS would swallow a second
scratch lying beside the first; above 0.7 it leaves near-copies of a box; a step of 0.05 is about the resolution a
validation split of tens of images can tell apart, and eleven suppressions of one network pass cost little.

Ties go to GluonCV's 0.45 when it is among the best (the data gives no reason to move away from the value the
network was built with), else to the highest IoU among the best: the fewest suppressions, so a second scratch
close to the first is least likely to be swallowed for the same F1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detector import thresholds
from detector.arrays import Array

GLUONCV_DEFAULT = 0.45  # YOLOV3.set_nms's default
GRID: tuple[float, ...] = tuple(round(0.2 + 0.05 * step, 2) for step in range(11))
CHOSEN = "validation"
NO_VALIDATION = "default: no validation split"
NOTHING_FOUND = "default: no NMS and score threshold pair finds a box on the validation split"
BAKED_IN = "default: GluonCV's, baked into a model whose metadata names none"


@dataclass(frozen=True)
class Pair:
    nms_threshold: float
    score: thresholds.Choice
    default_f1: float | None  # the best F1 at GluonCV's 0.45 (None: it finds no box there)


def choose(by_iou: Mapping[float, Iterable[tuple[Array, Array]]], classes: int) -> Pair | None:
    """The best (NMS threshold, score threshold) pair: `by_iou` maps each candidate IoU to every validation image's
    detections suppressed at it ((M, 6) corners, score, class id) and boxes ((N, 5) corners, class id). None when
    no pair finds a box."""
    chosen_at = {iou: thresholds.choose(images, classes) for iou, images in by_iou.items()}
    found = {iou: chosen for iou, chosen in chosen_at.items() if chosen is not None}
    if not found:
        return None
    best = max(chosen.f1 for chosen in found.values())
    tied = [iou for iou, chosen in found.items() if chosen.f1 == best]
    iou = GLUONCV_DEFAULT if GLUONCV_DEFAULT in tied else max(tied)
    default = found.get(GLUONCV_DEFAULT)
    return Pair(nms_threshold=iou, score=found[iou], default_f1=default.f1 if default else None)


def of_meta(meta: Mapping[str, Any]) -> tuple[float, str]:
    """The NMS threshold baked into a model and where it came from (GluonCV's for a model exported before the
    choice, whose metadata names none)."""
    if "nms_threshold" not in meta:
        return GLUONCV_DEFAULT, BAKED_IN
    return float(meta["nms_threshold"]), str(meta.get("nms_threshold_source", CHOSEN))

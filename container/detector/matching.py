"""Detections against ground truth at IoU 0.5, greedily by score, as VOC counts them: the one matching rule of
evaluation's precision and recall and of the score threshold chosen on the validation split."""

from __future__ import annotations

import numpy as np
from gluoncv.utils.bbox import bbox_iou

from detector.arrays import Array

IOU = 0.5


def hits(detections: Array, truths: Array) -> tuple[Array, Array]:
    """(scores, hit) of one image and class, highest score first: hit[i] says whether the i-th detection took a
    box no higher-scored detection had taken. A detection's outcome never depends on lower-scored ones, so
    keeping the detections above any threshold keeps these outcomes.

    detections: (M, 5) corners + score; truths: (N, 4) corners.
    """
    order = np.argsort(-detections[:, 4], kind="stable")
    scores = detections[order, 4]
    hit = np.zeros(len(order), bool)
    if not len(truths) or not len(order):
        return scores, hit
    overlaps = bbox_iou(detections[order, :4], truths)
    taken = np.zeros(len(truths), bool)
    for index, row in enumerate(overlaps):
        row = np.where(taken, -1.0, row)
        best = int(row.argmax())
        if row[best] >= IOU:
            taken[best] = hit[index] = True
    return scores, hit


def matches(detections: Array, truths: Array) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one image and class."""
    _, hit = hits(detections, truths)
    found = int(hit.sum())
    return found, len(hit) - found, len(truths) - found

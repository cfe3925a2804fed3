"""The detection score threshold that fits a model: the one that maximises F1 at IoU 0.5 on the validation split.

A fixed 0.5 suits a model whose scores happen to sit there; a model trained from scratch for a few minutes may
score its true detections at 0.2. Every detection's score is a candidate threshold (keep the detections scoring
at least it); F1 counts every class together (micro), as a person reading one picture does. Ties go to the
higher threshold: fewer boxes for the same F1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detector.arrays import Array
from detector.matching import hits


@dataclass(frozen=True)
class Choice:
    threshold: float
    f1: float
    precision: float
    recall: float


def choose(images: Iterable[tuple[Array, Array]], classes: int) -> Choice | None:
    """The best threshold over `images`: (detections (M, 6) corners, score, class id; truths (N, 5) corners,
    class id) each. None when there is nothing to choose from (no boxes, no detections, or none that hits)."""
    scores: list[Array] = []
    outcomes: list[Array] = []
    boxes = 0
    for detections, truths in images:
        for class_id in range(classes):
            mine = truths[truths[:, 4] == class_id, :4]
            score, hit = hits(detections[detections[:, 5] == class_id, :5], mine)
            scores.append(score)
            outcomes.append(hit)
            boxes += len(mine)
    if not boxes or not sum(len(s) for s in scores):
        return None
    score = np.concatenate(scores)
    hit = np.concatenate(outcomes)
    order = np.argsort(-score, kind="stable")
    score, hit = score[order], hit[order]
    true_positives = np.cumsum(hit)
    kept = np.arange(1, len(score) + 1)
    # a threshold keeps every detection scoring at least it: only the last of equal scores is a real cut
    cut = np.append(score[1:] != score[:-1], True)
    f1 = np.where(cut, 2 * true_positives / (kept + boxes), -1.0)
    if f1.max() <= 0:
        return None  # no threshold finds a single box: none fits
    best = int(np.flatnonzero(f1 == f1.max())[0])  # the first best from the top: the highest threshold
    return Choice(
        threshold=float(score[best]),
        f1=float(f1[best]),
        precision=float(true_positives[best] / kept[best]),
        recall=float(true_positives[best] / boxes),
    )

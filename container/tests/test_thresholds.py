"""The score threshold chosen on the validation split maximises F1 at IoU 0.5 (detector.thresholds), checked
against counting every candidate threshold with evaluation's own matching."""

from __future__ import annotations

import numpy as np
import pytest
from detector.arrays import Array
from detector.matching import matches
from detector.thresholds import choose


def box(x: float, y: float, size: float = 10.0) -> list[float]:
    return [x, y, x + size, y + size]


def detection(corners: list[float], score: float, class_id: int = 0) -> list[float]:
    return [*corners, score, class_id]


def brute_force(images: list[tuple[Array, Array]], classes: int) -> tuple[float, float]:
    """(best F1, its highest threshold), counting every candidate threshold with evaluate's matching."""
    candidates = sorted({float(s) for detections, _ in images for s in detections[:, 4]}, reverse=True)
    best = (-1.0, 0.0)
    for threshold in candidates:
        tp = fp = fn = 0
        for detections, truths in images:
            kept = detections[detections[:, 4] >= threshold]
            for class_id in range(classes):
                found = matches(kept[kept[:, 5] == class_id, :5], truths[truths[:, 4] == class_id, :4])
                tp, fp, fn = tp + found[0], fp + found[1], fn + found[2]
        f1 = 2 * tp / (2 * tp + fp + fn)
        if f1 > best[0] + 1e-12:
            best = (f1, threshold)
    return best


def test_the_threshold_keeps_the_low_scored_true_detections_and_leaves_the_noise() -> None:
    # three scratches found at modest scores, a confident false alarm, a duplicate and two weak false alarms
    images = [
        (np.array([detection(box(0, 0), 0.30), detection(box(50, 50), 0.60), detection(box(1, 0), 0.25)]),
         np.array([[*box(0, 0), 0]])),
        (np.array([detection(box(20, 20), 0.35), detection(box(80, 0), 0.20)]), np.array([[*box(20, 20), 0]])),
        (np.array([detection(box(5, 40), 0.28), detection(box(70, 70), 0.10)]), np.array([[*box(5, 40), 0]])),
    ]  # fmt: skip

    chosen = choose(images, classes=1)

    assert chosen is not None
    # at 0.28: the three scratches and the confident false alarm: F1 = 2*3 / (4 + 3)
    assert chosen.threshold == pytest.approx(0.28)
    assert chosen.f1 == pytest.approx(6 / 7)
    assert (chosen.precision, chosen.recall) == pytest.approx((3 / 4, 1.0))
    assert brute_force(images, 1) == pytest.approx((chosen.f1, chosen.threshold))


def test_equal_f1_goes_to_the_higher_threshold() -> None:
    # one hit at 0.9 and a miss (F1 2/3); down to 0.4, two false alarms and the second hit: F1 4/6 again
    images = [
        (np.array([detection(box(0, 0), 0.9), detection(box(60, 0), 0.5), detection(box(60, 60), 0.45),
                   detection(box(30, 30), 0.4)]),
         np.array([[*box(0, 0), 0], [*box(30, 30), 0]])),
    ]  # fmt: skip

    chosen = choose(images, classes=1)

    assert chosen is not None
    assert chosen.f1 == pytest.approx(2 / 3)
    assert chosen.threshold == pytest.approx(0.9)


def test_nothing_to_choose_from_gives_no_threshold() -> None:
    assert choose([(np.zeros((0, 6)), np.array([[*box(0, 0), 0]]))], classes=1) is None
    assert choose([(np.array([detection(box(0, 0), 0.5)]), np.zeros((0, 5)))], classes=1) is None
    # detections, but none on a box: no threshold fits
    assert choose([(np.array([detection(box(50, 50), 0.5)]), np.array([[*box(0, 0), 0]]))], classes=1) is None


@pytest.mark.parametrize("seed", range(20))
def test_the_choice_is_the_brute_force_maximum_on_random_validation_sets(seed: int) -> None:
    generator = np.random.default_rng(seed)
    images = []
    for _ in range(6):
        truths = np.array([[*box(*generator.uniform(0, 100, 2)), generator.integers(0, 2)] for _ in range(3)])
        # near-misses and hits around the truths, and noise elsewhere, at random scores (ties happen)
        near = truths[generator.integers(0, 3, 4)]
        corners = np.vstack([near[:, :4] + generator.normal(0, 3, (4, 1)), [box(*generator.uniform(0, 100, 2))]])
        class_ids = np.append(near[:, 4], generator.integers(0, 2))
        scores = generator.uniform(0, 1, len(corners)).round(2)
        detections = np.column_stack([corners, scores, class_ids])
        images.append((detections, truths))

    chosen = choose(images, classes=2)

    assert chosen is not None
    assert brute_force(images, 2) == pytest.approx((chosen.f1, chosen.threshold))

"""The two pictures a person looks at: training curves and test predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from detector.arrays import Array

TRUTH_COLOUR = "#2ca02c"
PREDICTION_COLOUR = "#d62728"


def training_curves(history: list[dict[str, Any]], path: Path) -> None:
    figure, (losses, quality) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = [entry["epoch"] for entry in history]
    for name in [key for key in history[0] if key.endswith("_loss")] if history else []:  # the job's own terms
        losses.plot(epochs, [entry[name] for entry in history], label=name)
    losses.set(title="training losses", xlabel="epoch", yscale="log")
    losses.legend()
    for key, label in (("val_map", "raw weights"), ("ema_val_map", "moving average")):  # the average: ema_decay
        validated = [(entry["epoch"], entry[key]) for entry in history if entry.get(key) is not None]
        if validated:
            quality.plot(*zip(*validated, strict=True), marker="o", label=label)
    if any(entry.get("ema_val_map") is not None for entry in history):
        quality.legend()
    quality.set(title="validation mAP@0.5", xlabel="epoch", ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def predictions(
    images: list[Array], truths: list[Array], predicted: list[Array], *, path: Path, columns: int = 4
) -> None:
    """A grid of RGB images with ground truth (green) and predicted boxes with scores (red).

    truths: (N, 4) corners per image; predicted: (M, 5) corners + score per image.
    """
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, truth, found in zip(axes.ravel(), images, truths, predicted, strict=False):
        axis.imshow(image)
        for x0, y0, x1, y1 in truth:
            axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=TRUTH_COLOUR, linewidth=1.5))
        for x0, y0, x1, y1, score in found:
            axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=PREDICTION_COLOUR, linewidth=1))
            axis.text(x0, y0, f"{score:.2f}", color=PREDICTION_COLOUR, fontsize=7, va="bottom")
    figure.suptitle("test predictions: ground truth green, predicted red")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def detections(image: Array, found: list[tuple[str, float, tuple[float, float, float, float]]], path: Path) -> None:
    """One RGB image with its detections (class, score, corners in its pixels), as `detector.predict` draws them."""
    height, width = image.shape[:2]
    figure, axis = plt.subplots(figsize=(max(4.0, width / 100), max(3.0, height / 100)))
    axis.axis("off")
    axis.imshow(image)
    for label, score, (x0, y0, x1, y1) in found:
        axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=PREDICTION_COLOUR, linewidth=1.5))
        axis.text(x0, y0, f"{label} {score:.2f}", color=PREDICTION_COLOUR, fontsize=8, va="bottom")
    axis.set_title(f"{len(found)} detection{'s' if len(found) != 1 else ''}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

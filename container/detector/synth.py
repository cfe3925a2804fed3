"""Deterministic synthetic scratch photographs, in the look and the label schema of the real metal tags.

A light background, a dark-grey tag with a punched hole and a dark edge, faint smudges and unlabelled hairlines,
then 0 to 4 bright thin scratches (straight or slightly curved, sometimes broken), varied light, blur and noise.
Image i depends only on (seed, i), so a larger set starts with the smaller one.

    python -m detector.synth --output DIR [--count 200] [--seed 7] [--style realistic|bold]

The `bold` style (`make run`'s demonstration set) draws the scratches 5 to 8 px wide and in full contrast, with no
unlabelled hairlines and no breaks: a detector trained from scratch for a few minutes on 2 cores can find them,
which it cannot on the realistic style's 1 to 2 px marks.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np

from detector.arrays import Array
from detector.records import FEATURES

WIDTH, HEIGHT = 450, 300
SCRATCH_COUNTS = (0, 1, 2, 3, 4)
SCRATCH_WEIGHTS = (0.1, 0.3, 0.3, 0.2, 0.1)
EPOCH_BASE = 1_700_000_000.0


def _curve(rng: np.random.Generator, plate: tuple[int, int, int, int]) -> Array:
    """Points of a straight or gently bent scratch inside the plate."""
    x0, y0, x1, y1 = plate
    length = rng.uniform(35, 190)
    angle = rng.uniform(0, np.pi)
    start = np.array([rng.uniform(x0 + 10, x1 - 10), rng.uniform(y0 + 10, y1 - 10)])
    end = start + length * np.array([np.cos(angle), np.sin(angle)])
    end = np.clip(end, [x0 + 5, y0 + 5], [x1 - 5, y1 - 5])
    middle = (start + end) / 2
    normal = np.array([-(end - start)[1], (end - start)[0]]) / max(np.linalg.norm(end - start), 1.0)
    bend = rng.uniform(-0.12, 0.12) * length if rng.random() < 0.6 else 0.0
    control = middle + bend * normal
    t = np.linspace(0.0, 1.0, 60)[:, None]
    curve: Array = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end  # quadratic Bezier
    return curve


def _draw(canvas: Array, points: Array, *, thickness: int, broken: bool, rng: np.random.Generator) -> None:
    pieces = np.array_split(points, 12) if broken else [points]
    for piece in pieces:
        if broken and rng.random() < 0.3:
            continue
        cv2.polylines(canvas, [np.round(piece * 16).astype(np.int32)], False, (1.0,), thickness, cv2.LINE_AA, 4)


STYLES = ("realistic", "bold")


def box(points: Array, thickness: int, *, width: int = WIDTH, height: int = HEIGHT) -> dict[str, int]:
    """The label of a scratch drawn `thickness` px wide along `points`: the stroke's whole extent with a pixel or
    two to spare, as a person drawing boxes would (3 px past the centre line for hairlines; a bold stroke reaches
    half its width and an antialiased pixel past it, which a fixed 3 px cut off)."""
    margin = max(3, thickness // 2 + 2)
    left, top = np.floor(points.min(axis=0) - margin).astype(int)
    right, bottom = np.ceil(points.max(axis=0) + margin).astype(int)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width - 1), min(bottom, height - 1)
    return {"class_id": 0, "top": int(top), "left": int(left), "height": int(bottom - top), "width": int(right - left)}


def render(
    seed: int, index: int, *, width: int = WIDTH, height: int = HEIGHT, style: str = "realistic"
) -> tuple[Array, list[dict[str, int]]]:
    """One grey photograph (uint8, HxWx3) and its boxes in the feature-group form."""
    bold = style == "bold"
    rng = np.random.default_rng([seed, index])
    image = np.full((height, width), rng.uniform(190, 245), np.float32)
    x0, y0 = int(rng.integers(10, 30)), int(rng.integers(20, 40))
    x1, y1 = width - int(rng.integers(10, 30)), height - int(rng.integers(15, 35))
    plate_level = rng.uniform(55, 105)
    gradient = np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-15, 15)
    plate = np.zeros((height, width), np.uint8)
    cv2.rectangle(plate, (x0, y0), (x1, y1), 1, -1)
    image = np.where(plate > 0, plate_level + gradient, image)
    image[y0:y1, x0 : x0 + int(rng.integers(4, 14))] *= 0.4  # the tag's dark edge
    hole = (x0 + int(rng.integers(14, 30)), y0 + int(rng.integers(14, 30)))
    cv2.circle(image, hole, int(rng.integers(6, 11)), (float(rng.uniform(225, 255)),), -1, cv2.LINE_AA)

    smudges = np.zeros_like(image)
    for _ in range(int(rng.integers(0, 6))):
        centre = (int(rng.integers(x0, x1)), int(rng.integers(y0, y1)))
        axes = (int(rng.integers(5, 30)), int(rng.integers(5, 20)))
        cv2.ellipse(smudges, centre, axes, float(rng.uniform(0, 180)), 0, 360, (float(rng.uniform(8, 25)),), -1)
    image += cv2.GaussianBlur(smudges, (0, 0), 4) * plate
    hairlines = np.zeros_like(image)
    for _ in range(0 if bold else int(rng.integers(0, 4))):  # faint marks that are not scratches: to be ignored
        _draw(hairlines, _curve(rng, (x0, y0, x1, y1)), thickness=1, broken=False, rng=rng)
    image += hairlines * rng.uniform(10, 30)

    boxes = []
    scratches = np.zeros_like(image)
    for _ in range(int(rng.choice(SCRATCH_COUNTS, p=SCRATCH_WEIGHTS))):
        points = _curve(rng, (x0, y0, x1, y1))
        layer = np.zeros_like(image)
        thickness = int(rng.integers(5, 9)) if bold else int(rng.integers(1, 3))
        _draw(layer, points, thickness=thickness, broken=not bold and rng.random() < 0.35, rng=rng)
        scratches = np.maximum(scratches, layer * (1.0 if bold else rng.uniform(0.6, 1.0)))
        boxes.append(box(points, thickness, width=width, height=height))
    brightness = rng.uniform(200, 255)
    image = image * (1 - scratches) + brightness * scratches

    image = image * rng.uniform(0.75, 1.2) + rng.uniform(-15, 15)  # light
    sigma = rng.uniform(0.0, 1.1)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0, rng.uniform(2, 7), image.shape).astype(np.float32)
    grey = np.clip(image, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), boxes


def generate(output: Path, count: int, seed: int, *, quality: int = 92, style: str = "realistic") -> Path:
    """Write `images/synth-<seed>-<i>.jpg` and `labels.csv` under `output`; returns the CSV's path."""
    images = output / "images"
    images.mkdir(parents=True, exist_ok=True)
    labels = output / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=FEATURES)
        writer.writeheader()
        for index in range(count):
            image, boxes = render(seed, index, style=style)
            name = f"images/synth-{seed}-{index:05d}.jpg"
            if not cv2.imwrite(str(output / name), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise OSError(f"could not write {output / name}")
            writer.writerow(
                {
                    "source_ref": name,
                    "image_width": image.shape[1],
                    "image_height": image.shape[0],
                    "image_depth": image.shape[2],
                    "annotations": json.dumps(boxes),
                    "event_time": EPOCH_BASE + index,
                    "labeling_job": f"synthetic/seed-{seed}",
                    "status": "APPROVED",
                }
            )
    return labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="folder for images/ and labels.csv")
    parser.add_argument("--count", type=int, default=200, help="number of images (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--style", choices=STYLES, default="realistic", help="realistic (default) or bold")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    labels = generate(args.output, args.count, args.seed, style=args.style)
    print(f"wrote {args.count} images and {labels}")


if __name__ == "__main__":
    main()

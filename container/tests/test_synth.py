"""Synthetic photographs: deterministic, labelled in the feature-group schema, scratches where the boxes are."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from detector import synth
from detector.records import FEATURES, parse_record

from .conftest import labels


def test_same_seed_same_images_and_a_larger_set_starts_with_the_smaller(tmp_path: Path) -> None:
    synth.generate(tmp_path / "a", 3, seed=5)
    synth.generate(tmp_path / "b", 5, seed=5)
    small, large = labels(tmp_path / "a"), labels(tmp_path / "b")
    assert large[:3] == small
    for row in small:
        first = cv2.imread(str(tmp_path / "a" / row["source_ref"]))
        second = cv2.imread(str(tmp_path / "b" / row["source_ref"]))
        assert np.array_equal(first, second)
    other, _ = synth.render(6, 0)
    assert not np.array_equal(other, cv2.imread(str(tmp_path / "a" / small[0]["source_ref"])))


def test_rows_follow_the_schema_and_boxes_hold_bright_scratches(synthetic: Path) -> None:
    rows = labels(synthetic)
    assert tuple(rows[0]) == FEATURES
    counts = []
    for row in rows:
        record = parse_record(row)
        image = cv2.imread(str(synthetic / record.source_ref), cv2.IMREAD_GRAYSCALE)
        assert (record.image_width, record.image_height) == (image.shape[1], image.shape[0]) == (450, 300)
        counts.append(len(record.annotations))
        for box in record.annotations:
            x0, y0, x1, y1 = (int(v) for v in box.corners)
            assert 0 <= x0 < x1 < 450
            assert 0 <= y0 < y1 < 300
            plate_level = np.median(image[40:260, 40:400])
            assert image[y0 : y1 + 1, x0 : x1 + 1].max() > plate_level + 40  # a bright mark inside every box
    assert set(counts) <= set(synth.SCRATCH_COUNTS)
    assert len(set(counts)) > 2  # varied, including some with several scratches
    assert json.loads(rows[0]["annotations"]) is not None  # JSON, the form the feature group stores


def test_the_bold_style_draws_wider_marks() -> None:
    def lit(style: str) -> float:
        """The share of each box's pixels that belong to a bright mark, averaged over ten images."""
        shares = []
        for index in range(10):
            image, boxes = synth.render(3, index, style=style)
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            for box in boxes:
                window = grey[box["top"] : box["top"] + box["height"], box["left"] : box["left"] + box["width"]]
                shares.append(float((window > 170).mean()))
        return float(np.mean(shares))

    assert lit("bold") > 1.8 * lit("realistic")


def test_every_drawn_pixel_of_a_scratch_lies_inside_its_box() -> None:
    """The label encloses the whole mark, as a person drawing boxes would, at both styles' widths."""
    rng = np.random.default_rng(11)
    for thickness in (1, 2, 5, 6, 7, 8):
        for _ in range(20):
            points = synth._curve(rng, (20, 30, 430, 270))
            layer = np.zeros((synth.HEIGHT, synth.WIDTH), np.float32)
            synth._draw(layer, points, thickness=thickness, broken=False, rng=rng)
            box = synth.box(points, thickness)
            ys, xs = np.nonzero(layer > 0.02)
            assert box["left"] <= xs.min(), (thickness, box)
            assert xs.max() <= box["left"] + box["width"], (thickness, box)
            assert box["top"] <= ys.min(), (thickness, box)
            assert ys.max() <= box["top"] + box["height"], (thickness, box)
            # and no looser than it needs to be: 3 px past the centre line (then whole pixels) for hairlines, as before
            margin = max(3, thickness // 2 + 2)
            assert box["width"] <= np.ptp(points[:, 0]) + 2 * margin + 2, (thickness, box)

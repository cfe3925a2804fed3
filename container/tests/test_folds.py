"""bench-quality's k folds are cut from preprocess's own RecordIO files: each image validates in exactly one fold,
trains in the others, and keeps the bytes and label preprocess packed; the test split is not in any fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from detector.recordio import Writer, pack_label
from mxnet import recordio

from bench.container.folds import fold_of, write_folds

FOLDS = 3


def _split(root: Path, channel: str, refs: list[str]) -> None:
    with Writer(root / "processing" / "output" / channel, channel) as writer:
        for index, ref in enumerate(refs):
            writer.write(ref.encode() * 3, pack_label([(0, index, 1.0, index + 2.0, 3.0)], 40, 30), ref)


def _read(folder: Path, channel: str) -> dict[str, tuple[bytes, list[float]]]:
    refs = [line.split("\t")[-1] for line in (folder / f"{channel}.lst").read_text(encoding="utf-8").splitlines()]
    reader = recordio.MXIndexedRecordIO(str(folder / f"{channel}.idx"), str(folder / f"{channel}.rec"), "r")
    records = {}
    for index, ref in enumerate(refs):
        header, image = recordio.unpack(reader.read_idx(index))
        records[ref] = (image, np.asarray(header.label).tolist())
    reader.close()
    return records


def test_each_image_validates_in_one_fold_and_trains_in_the_others(tmp_path: Path) -> None:
    # Given preprocess's train, validation and test splits
    train, validation = [f"images/t{i}.jpg" for i in range(12)], [f"images/v{i}.jpg" for i in range(5)]
    splits = tmp_path / "pre"
    _split(splits, "train", train)
    _split(splits, "validation", validation)
    _split(splits, "test", ["images/test.jpg"])
    packed = _read(splits / "processing" / "output" / "train", "train")
    packed |= _read(splits / "processing" / "output" / "validation", "validation")

    # When they are cut into folds
    roots = write_folds(splits, tmp_path / "folds", FOLDS)

    # Then fold i validates on its own images and trains on all the others, each with its packed bytes and label
    assert roots == [tmp_path / "folds" / f"fold-{i}" for i in range(FOLDS)]
    seen: list[str] = []
    for index, root in enumerate(roots):
        own = _read(root / "processing" / "output" / "validation", "validation")
        rest = _read(root / "processing" / "output" / "train", "train")
        assert set(own) == {ref for ref in packed if fold_of(ref, FOLDS) == index}
        assert set(rest) == set(packed) - set(own)
        assert own | rest == packed
        seen += own
    assert sorted(seen) == sorted(packed)  # disjoint, and together every train and validation image

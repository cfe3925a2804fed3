"""k-fold cross-validation over train + validation, the test split untouched.

Each image's fold is chosen by a hash of its source_ref (as preprocess chooses its split, from other bits of the
same digest), so it never changes with the seed, the order or the other images. Fold i trains on the other k - 1
folds and validates on its own. The folds are cut from preprocess's own train and validation RecordIO files and
packed again with the detector's writer (detector.recordio), so a fold holds exactly the bytes and labels that
preprocess packed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHANNELS = ("train", "validation")


def fold_of(source_ref: str, folds: int) -> int:
    """The fold (0 .. folds - 1) of an image: bytes 8..16 of the sha256 of its source_ref (preprocess's split uses
    bytes 0..8), so the fold does not depend on the split's draw."""
    if folds < 2:
        raise ValueError(f"folds: {folds}, cross-validation needs at least 2")
    return int.from_bytes(hashlib.sha256(source_ref.encode("utf-8")).digest()[8:16], "big") % folds


def source_refs(lst: Path) -> list[str]:
    """The source_ref of each record of a split's `.lst`, in index order (the line's last field)."""
    return [line.rstrip("\n").split("\t")[-1] for line in lst.read_text(encoding="utf-8").splitlines() if line]


def write_folds(splits: Path, root: Path, folds: int) -> list[Path]:
    """Fold i's preprocess-shaped root (`processing/output/{train,validation}`) for each fold, under `root`, from the
    train and validation outputs of the preprocess root `splits`. Returns the fold roots."""
    from detector.recordio import Writer
    from mxnet import recordio

    roots = [root / f"fold-{index}" for index in range(folds)]
    writers = {
        (index, channel): Writer(fold / "processing" / "output" / channel, channel)
        for index, fold in enumerate(roots)
        for channel in CHANNELS
    }
    try:
        for channel in CHANNELS:
            folder = splits / "processing" / "output" / channel
            refs = source_refs(folder / f"{channel}.lst")
            reader = recordio.MXIndexedRecordIO(str(folder / f"{channel}.idx"), str(folder / f"{channel}.rec"), "r")
            for index, source_ref in enumerate(refs):
                header, image = recordio.unpack(reader.read_idx(index))
                own = fold_of(source_ref, folds)
                for fold in range(folds):
                    writers[fold, "validation" if fold == own else "train"].write(image, header.label, source_ref)
            reader.close()
    finally:
        for writer in writers.values():
            writer.close()
    return roots

"""GluonCV's detection RecordIO: `.lst` lines and `.rec/.idx` records with packed labels.

A label is `[2, 5, cls, xmin, ymin, xmax, ymax, ...]` with corners normalised to [0, 1] (header width 2,
object width 5), as `im2rec.py --pack-label` writes it and `gluoncv.data.RecordFileDetection` reads it.
An image without a scratch gets one padding object, class -1 and a zero box (GluonCV pads with -1), since
RecordFileDetection needs at least one object row; readers drop rows whose class is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from detector.arrays import Array

HEADER_WIDTH = 2
OBJECT_WIDTH = 5
PADDING = (-1.0, 0.0, 0.0, 0.0, 0.0)


def pack_label(objects: Sequence[tuple[int, float, float, float, float]], width: int, height: int) -> Array:
    """objects: (class_id, xmin, ymin, xmax, ymax) in pixels -> the packed, normalised label."""
    rows = [(float(c), x0 / width, y0 / height, x1 / width, y1 / height) for c, x0, y0, x1, y1 in objects] or [PADDING]
    return np.array([HEADER_WIDTH, OBJECT_WIDTH, *[v for row in rows for v in row]], dtype=np.float32)


def lst_line(index: int, label: Array, path: str) -> str:
    values = "\t".join(f"{value:.6g}" for value in label)
    return f"{index}\t{values}\t{path}\n"


class Writer:
    """One split's `.lst`, `.rec` and `.idx`, written in index order."""

    def __init__(self, folder: Path, name: str) -> None:
        from mxnet import recordio

        self._recordio = recordio
        folder.mkdir(parents=True, exist_ok=True)
        self.rec = folder / f"{name}.rec"
        self._record = recordio.MXIndexedRecordIO(str(folder / f"{name}.idx"), str(self.rec), "w")
        self._lst = (folder / f"{name}.lst").open("w", encoding="utf-8")
        self.count = 0

    def write(self, image: bytes, label: Array, path: str) -> None:
        header = self._recordio.IRHeader(0, label, self.count, 0)
        self._record.write_idx(self.count, self._recordio.pack(header, image))
        self._lst.write(lst_line(self.count, label, path))
        self.count += 1

    def close(self) -> None:
        self._record.close()
        self._lst.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def unpack_label(label: Array, width: int, height: int) -> Array:
    """A packed label -> (N, 5) rows [xmin, ymin, xmax, ymax, cls] in pixels of a `width` x `height` image, as
    gluoncv's RecordFileDetection(coord_normalized=True) gives them (padding rows keep class -1)."""
    flat = np.asarray(label, dtype=np.float32).ravel()
    header, object_width = int(flat[0]), int(flat[1])
    if object_width < OBJECT_WIDTH or (len(flat) - header) % object_width or len(flat) < header + OBJECT_WIDTH:
        raise ValueError(f"label of {len(flat)} values is not a header of {header} and objects of {object_width}")
    rows = flat[header:].reshape(-1, object_width)
    objects: Array = np.concatenate([rows[:, 1:5], rows[:, :1], rows[:, 5:]], axis=1)
    objects[:, (0, 2)] *= width
    objects[:, (1, 3)] *= height
    return objects

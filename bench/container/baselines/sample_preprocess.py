"""Baseline: the original sample's preprocessing, for bench.container to time against ours.

Reads the offline store, keeps the latest record per source_ref, downloads the images one after another with
`download_file`, writes a `.lst` per split, then packs with MXNet's own `im2rec.py --pass-through --pack-label`.
(The sample also cached images by basename and split without a fixed hash; those bugs are not reproduced:
only its way of working is timed.)

    python -m bench.container.baselines.sample_preprocess STORE WORKDIR
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pyarrow.parquet as pq
from detector.preprocess import check_boxes, split_of
from detector.recordio import lst_line, pack_label
from detector.records import parse_record

RATIOS = (0.7, 0.15, 0.15)


def main() -> None:
    store, work = Path(sys.argv[1]), Path(sys.argv[2])
    frame = pq.ParquetDataset(str(store)).read().to_pandas()
    frame = frame.sort_values(["source_ref", "event_time", "write_time"]).groupby("source_ref").tail(1)
    frame = frame[(frame.status == "APPROVED") & (~frame.is_deleted)]
    s3 = boto3.client("s3")
    images = work / "images"
    lines: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for values in frame.to_dict("records"):
        record = parse_record(values)
        location = urlparse(record.source_ref)
        local = images / location.path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(location.netloc, location.path.lstrip("/"), str(local))
        split = split_of(record.source_ref, RATIOS)
        label = pack_label(check_boxes(record, 1, 1), record.image_width, record.image_height)
        lines[split].append(lst_line(len(lines[split]), label, str(local.relative_to(images))))
    for split, content in lines.items():
        (work / f"{split}.lst").write_text("".join(content), encoding="utf-8")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mxnet.tools.im2rec",
                "--pass-through",
                "--pack-label",
                "--no-shuffle",
                str(work / split),
                str(images),
            ],
            check=True,
            capture_output=True,
        )


if __name__ == "__main__":
    main()

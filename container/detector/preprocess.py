"""Processing step: the feature group's offline store to train/validation/test RecordIO files.

    python3 -m detector.preprocess --feature-group NAME --classes scratch \
        --train-ratio 0.7 --validation-ratio 0.15 --test-ratio 0.15 --min-box-size 2 \
        [--data-as-of 2026-12-05T02:00:00Z] [--ingest-log s3://BUCKET/ingest-log/NAME/]

Reads `/opt/ml/processing/input/offline-store` as of `--data-as-of` (default: the job's start; detector.as_of):
only the rows written at or before it count, and each S3 image is read at its version of that time. It keeps the
latest of those records per source_ref when it is APPROVED and not deleted, fetches the images concurrently
(detector.image_source: S3 URIs, or paths under --image-root) and packs each into its split while the rest download.
Writes `output/<split>/<split>.{lst,rec,idx}`, `output/report/dataset_report.json`, which lists every dropped record
with its reason, and `output/report/manifest.jsonl` (detector.manifest), which names every image of every split with
its version and checksum; the report gives its sha256. No usable training image ends the job with a one-line reason.

Feature Store writes the offline store in batches, within 15 minutes of PutRecord: with `--ingest-log` (what
detector.ingest put), the report's `not_in_offline_store` counts and names the approved records that exist but
that the offline store does not hold yet, so a run started too early says what it trained without.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector import as_of, ingest_log, jobs, manifest, paths
from detector.image_source import ImageSource, fetch_all
from detector.offline_store import StoreRow, latest, read_rows
from detector.recordio import Writer, pack_label
from detector.records import Record, RecordError, parse_record

log = logging.getLogger("detector.preprocess")

SPLITS = ("train", "validation", "test")
REPORT_FILE = "dataset_report.json"
# Labelling tools round box edges; a box may overhang the image by this much and is clipped.
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Options:
    feature_group: str
    classes: tuple[str, ...]
    ratios: tuple[float, float, float]
    min_box_size: float
    input: Path
    output: Path
    image_root: Path
    workers: int
    ingest_log: str | None = None
    data_as_of: str = ""


@dataclass(frozen=True)
class Candidate:
    record: Record
    objects: tuple[tuple[int, float, float, float, float], ...]
    split: str
    write_time: float  # when the offline store wrote its row (seconds since the epoch)


def split_of(source_ref: str, ratios: tuple[float, float, float]) -> str:
    """Hash-based split: depends on the image's id alone, so it never moves when other data is added."""
    position = int.from_bytes(hashlib.sha256(source_ref.encode("utf-8")).digest()[:8], "big") / 2**64
    train, validation, _ = ratios
    if position < train:
        return "train"
    if position < train + validation:
        return "validation"
    return "test"


def check_boxes(record: Record, classes: int, min_size: float) -> tuple[tuple[int, float, float, float, float], ...]:
    """The record's boxes as (cls, xmin, ymin, xmax, ymax), clipped within the tolerance; RecordError otherwise."""
    width, height = record.image_width, record.image_height
    objects = []
    for index, box in enumerate(record.annotations):
        where = f"annotations[{index}]"
        if box.class_id >= classes:
            raise RecordError(f"{where}.class_id: {box.class_id} but there are {classes} classes")
        if box.width <= 0 or box.height <= 0:
            raise RecordError(f"{where}: box has no area ({box.width}x{box.height})")
        if box.width < min_size or box.height < min_size:
            raise RecordError(f"{where}: box {box.width}x{box.height} is below the minimum size {min_size:g}")
        x0, y0, x1, y1 = box.corners
        if x0 < -EDGE_TOLERANCE or y0 < -EDGE_TOLERANCE or x1 > width + EDGE_TOLERANCE or y1 > height + EDGE_TOLERANCE:
            raise RecordError(f"{where}: box ({x0:g},{y0:g})-({x1:g},{y1:g}) lies outside the {width}x{height} image")
        objects.append((box.class_id, max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))))
    return tuple(objects)


def select(rows: list[StoreRow], options: Options) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The usable latest records, ordered by source_ref, and the dropped ones with their reasons."""
    dropped: list[dict[str, Any]] = []
    candidates = []
    for row in rows:
        if not row.source_ref:
            dropped.append({"source_ref": None, "file": row.file, "row": row.row, "reason": "source_ref: missing"})
    chosen = latest([row for row in rows if row.source_ref])
    for source_ref in sorted(chosen):
        row = chosen[source_ref]
        if row.deleted:
            dropped.append({"source_ref": source_ref, "reason": "deleted"})
            continue
        try:
            record = parse_record(row.values)
            if record.status != "APPROVED":
                dropped.append({"source_ref": source_ref, "reason": f"status {record.status}"})
                continue
            objects = check_boxes(record, len(options.classes), options.min_box_size)
        except RecordError as error:
            dropped.append({"source_ref": source_ref, "reason": str(error)})
            continue
        written = as_of.write_seconds(row) or 0.0  # every row here has one: as_of.cut refused the others
        candidates.append(Candidate(record, objects, split_of(source_ref, options.ratios), written))
    return candidates, dropped


@dataclass
class Written:
    """What went into the splits: each split's images, boxes and images without boxes, the manifest's entries, and
    the candidates dropped for their image, with the reason."""

    counts: dict[str, dict[str, int]]
    entries: list[manifest.Entry]
    dropped: list[dict[str, Any]]


def entry(candidate: Candidate, data: bytes, version_id: str | None) -> manifest.Entry:
    record = candidate.record
    return manifest.Entry(
        split=candidate.split,
        source_ref=record.source_ref,
        version_id=version_id,
        sha256=hashlib.sha256(data).hexdigest(),
        annotations_sha256=manifest.annotations_sha256(record.annotations),
        boxes=len(candidate.objects),
        labeling_job=record.labeling_job,
        event_time=manifest.timestamp(record.event_time),
        write_time=manifest.timestamp(candidate.write_time),
    )


def write_splits(candidates: list[Candidate], options: Options, *, at: datetime) -> Written:
    """Every candidate whose image (as of `at`) is whole into its split's RecordIO."""
    written = Written({split: {"images": 0, "boxes": 0, "negatives": 0} for split in SPLITS}, [], [])
    counts = written.counts
    # writers open on first use: importing MXNet takes a second or two, which the downloads run through
    writers: dict[str, Writer] = {}
    try:
        source = ImageSource(options.image_root, options.workers, at)
        loaded = fetch_all(source, [candidate.record for candidate in candidates])
        for candidate, image in zip(candidates, loaded, strict=True):
            if image.data is None:
                written.dropped.append({"source_ref": candidate.record.source_ref, "reason": image.problem})
                continue
            record, split = candidate.record, candidate.split
            if split not in writers:
                writers[split] = Writer(options.output / split, split)
            writers[split].write(
                image.data, pack_label(candidate.objects, record.image_width, record.image_height), record.source_ref
            )
            written.entries.append(entry(candidate, image.data, image.version_id))
            counts[split]["images"] += 1
            counts[split]["boxes"] += len(candidate.objects)
            counts[split]["negatives"] += not candidate.objects
        for split in SPLITS:  # every split exists, even an empty one
            if split not in writers:
                writers[split] = Writer(options.output / split, split)
    finally:
        for writer in writers.values():
            writer.close()
    return written


def not_in_offline_store(rows: list[StoreRow], options: Options) -> dict[str, Any] | None:
    """The approved records the ingest log names that the offline store does not hold yet (None without a log);
    a log that cannot be read is reported, not fatal: the run can still train on what the store holds."""
    if not options.ingest_log:
        return None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        logged = ingest_log.read(boto3.client("s3"), options.ingest_log, feature_group=options.feature_group)
    except (BotoCoreError, ClientError, ValueError, KeyError) as error:
        return {"ingest_log": options.ingest_log, "approved_records": None, "error": f"{type(error).__name__}: {error}"}
    missing = ingest_log.not_arrived(logged, rows)
    if missing:
        jobs.event(log, "records not in the offline store yet", approved=len(missing))
    return {"ingest_log": options.ingest_log, "approved_records": len(missing), "source_refs": missing}


def _pending_note(pending: dict[str, Any] | None) -> str:
    count = (pending or {}).get("approved_records")
    if not count:
        return ""
    return (
        f"; {count} approved records ingested are not in the offline store yet (Feature Store writes it within"
        " 15 minutes of PutRecord): start the run again when they are"
    )


def run(options: Options) -> dict[str, Any]:
    started = time.monotonic()
    try:
        at = as_of.parse(options.data_as_of, datetime.now(UTC))
    except as_of.AsOfError as error:
        raise jobs.JobError(str(error)) from None
    if not options.input.is_dir():
        raise jobs.JobError(f"no offline-store input at {options.input}")
    rows = read_rows(options.input)
    pending = not_in_offline_store(rows, options)
    if not rows:
        raise jobs.JobError(
            f"feature group {options.feature_group}: the offline store holds no records{_pending_note(pending)}"
        )
    cut = as_of.cut(rows, at)
    candidates, dropped = select(cut.kept, options)
    dropped = cut.refused + dropped
    jobs.event(
        log,
        "records selected",
        rows=len(rows),
        as_of=as_of.iso(at),
        written_after_as_of=cut.written_after,
        usable=len(candidates),
        dropped=len(dropped),
    )
    written = write_splits(candidates, options, at=at)
    dropped += written.dropped
    counts = written.counts
    report_dir = options.output / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    data = manifest.dumps(written.entries)
    (report_dir / manifest.MANIFEST_FILE).write_bytes(data)
    report = {
        "feature_group": options.feature_group,
        "classes": list(options.classes),
        "ratios": dict(zip(SPLITS, options.ratios, strict=True)),
        "as_of": as_of.iso(at),
        "records_read": len(rows),
        "written_after_as_of": cut.written_after,
        "source_refs": len({row.source_ref for row in cut.kept if row.source_ref}),
        "splits": counts,
        "images": sum(split["images"] for split in counts.values()),
        "boxes": sum(split["boxes"] for split in counts.values()),
        "manifest": {"file": manifest.MANIFEST_FILE, "sha256": manifest.digest(data), "images": len(written.entries)},
        "dropped": dropped,
        "seconds": round(time.monotonic() - started, 3),
    }
    if pending is not None:
        report["not_in_offline_store"] = pending
    (report_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _check_usable(report, options, pending)
    jobs.event(log, "dataset written", images=report["images"], dropped=len(dropped), seconds=report["seconds"])
    return report


def _check_usable(report: dict[str, Any], options: Options, pending: dict[str, Any] | None) -> None:
    if report["images"] == 0:
        raise jobs.JobError(
            f"feature group {options.feature_group}: no usable image as of {report['as_of']}"
            f" ({len(report['dropped'])} records dropped, {report['written_after_as_of']} rows written after it,"
            f" see {REPORT_FILE}){_pending_note(pending)}"
        )
    if report["splits"]["train"]["images"] == 0:
        raise jobs.JobError(
            f"feature group {options.feature_group}: the train split is empty ({report['images']} usable images)"
            f"{_pending_note(pending)}"
        )


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python3 -m detector.preprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--feature-group", required=True)
    parser.add_argument("--classes", required=True, help="comma-separated class names, in class_id order")
    parser.add_argument("--train-ratio", type=_ratio, required=True)
    parser.add_argument("--validation-ratio", type=_ratio, required=True)
    parser.add_argument("--test-ratio", type=_ratio, required=True)
    parser.add_argument("--min-box-size", type=float, default=1.0, help="smallest box side in pixels")
    parser.add_argument("--input", type=Path, default=None, help="offline-store folder (default: the job's input)")
    parser.add_argument("--output", type=Path, default=None, help="output root (default: the job's output)")
    parser.add_argument("--image-root", type=Path, default=Path.cwd(), help="base of source_refs that are not S3 URIs")
    parser.add_argument("--workers", type=int, default=16, help="concurrent image downloads")
    parser.add_argument("--ingest-log", default=None, help="s3:// prefix of detector.ingest's lists of records put")
    parser.add_argument(
        "--data-as-of",
        default="",
        help="ISO 8601 time with a UTC offset: the rows written and image versions current then (default: now)",
    )
    args = parser.parse_args(argv)
    classes = tuple(name.strip() for name in args.classes.split(",") if name.strip())
    if not classes:
        parser.error("--classes: at least one class name")
    ratios = (args.train_ratio, args.validation_ratio, args.test_ratio)
    if abs(sum(ratios) - 1.0) > 1e-6:
        parser.error(f"--train-ratio, --validation-ratio and --test-ratio must add up to 1, not {sum(ratios):g}")
    return Options(
        feature_group=args.feature_group,
        classes=classes,
        ratios=ratios,
        min_box_size=args.min_box_size,
        input=args.input or paths.processing_input("offline-store"),
        output=args.output or paths.processing_output(""),
        image_root=args.image_root,
        workers=max(1, args.workers),
        ingest_log=args.ingest_log,
        data_as_of=args.data_as_of,
    )


def main(argv: list[str] | None = None) -> None:
    jobs.run(lambda: run(parse_args(argv)), jobs.processing_failure)


if __name__ == "__main__":
    main()

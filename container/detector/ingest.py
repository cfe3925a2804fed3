"""Labelled images into S3 and the feature group (PutRecord), image by image.

    python -m detector.ingest --labels PATH --bucket BUCKET --feature-group NAME [--classes scratch] \
        [--format csv|coco|voc|yolo|groundtruth] [--images DIR] [--prefix images] [--status APPROVED|REJECTED] \
        [--label-attribute NAME] [--ingest-log s3://BUCKET/ingest-log/NAME/] [--wait-offline SECONDS]

PATH is a label export, a file or the folder holding it: the feature group's own CSV (the metal-tags `labels.csv`
layout), COCO instances JSON, Pascal VOC XML, YOLO txt with its class list, or a SageMaker Ground Truth
bounding-box output manifest (detector.labels; the format is detected from PATH unless --format names it). Classes
are mapped by name to --classes (the config's, in class_id order; a CSV gives ids, checked against them when
given). Each image goes to `s3://BUCKET/PREFIX/<its path under --images>` (a CSV source_ref that already is an S3
URI is kept) and its record, with that URI as source_ref and JSON annotations, goes to the feature group.
`labeling_job` says where a record came from: the CSV's column, Ground Truth's job-name, or `coco:<file>`,
`voc:<folder>`, `yolo:<folder>` (the path from the images folder's parent: the dataset's name first); event_time
is Ground Truth's creation-date or the CSV's column, else the time of the ingest; status is the CSV's column, else
--status (APPROVED unless told). A refused row, image or object is named (file, row/line/object, reason) and the
good records still go in (an image with a refused object is not ingested at all); the exit code is 1 when anything
was refused, 2 when the export cannot be read at all.

Feature Store writes the offline store, which Preprocess reads, in batches "within 15 minutes" of PutRecord:
`--ingest-log` keeps the list of records put under that S3 prefix (Preprocess counts those not in the offline store
yet), and `--wait-offline` waits up to that many seconds until the offline store holds every one, saying how many
have arrived; the exit code is 3 when some have not, naming them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from detector import ingest_log, jobs, offline_arrival
from detector.labels import formats
from detector.labels.classes import ClassMap
from detector.labels.common import Context, Labelled, Problem
from detector.records import FEATURES, STATUSES, Record, RecordError

log = logging.getLogger("detector.ingest")


def object_key(prefix: str, source_ref: str) -> str:
    path = PurePosixPath(source_ref)
    if path.is_absolute() or ".." in path.parts:
        raise RecordError("source_ref: must be a relative path inside --images (or an s3:// URI)")
    return str(PurePosixPath(prefix) / path) if prefix else str(path)


class Ingest:
    def __init__(self, images: Path, *, bucket: str, prefix: str, feature_group: str, workers: int) -> None:
        import boto3
        from botocore.config import Config

        config = Config(max_pool_connections=workers, retries={"mode": "standard"})
        self.s3 = boto3.client("s3", config=config)
        self.store = boto3.client("sagemaker-featurestore-runtime", config=config)
        self.images, self.bucket, self.prefix, self.feature_group = images, bucket, prefix.strip("/"), feature_group
        self.workers = workers

    def one(self, item: Labelled) -> Problem | Record:
        from botocore.exceptions import BotoCoreError, ClientError

        record = item.record
        try:
            if not record.source_ref.startswith("s3://"):
                key = object_key(self.prefix, record.source_ref)
                image = self.images / record.source_ref
                if not image.is_file():
                    raise RecordError(f"image {image} not found")
                self.s3.upload_file(str(image), self.bucket, key)
                record = replace(record, source_ref=f"s3://{self.bucket}/{key}")
            values = record.feature_values()
            self.store.put_record(
                FeatureGroupName=self.feature_group,
                Record=[{"FeatureName": name, "ValueAsString": values[name]} for name in FEATURES],
            )
        except RecordError as error:
            return Problem(item.place, item.record.source_ref, str(error))
        except ClientError as error:
            detail = error.response.get("Error", {})
            return Problem(item.place, item.record.source_ref, f"{detail.get('Code')}: {detail.get('Message')}")
        except BotoCoreError as error:
            return Problem(item.place, item.record.source_ref, str(error))
        return record

    def all(self, labelled: list[Labelled]) -> tuple[list[Problem], list[Record]]:
        """The refused records, and the records put (source_refs as stored)."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ingest") as pool:
            done = list(pool.map(self.one, labelled))
        return [p for p in done if isinstance(p, Problem)], [r for r in done if isinstance(r, Record)]

    def offline_store_uri(self) -> str:
        import boto3

        described = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=self.feature_group)
        uri = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {}).get("ResolvedOutputS3Uri")
        if not uri:
            raise jobs.JobError(f"feature group {self.feature_group}: no offline store to wait for")
        return str(uri)


def after_put(ingest: Ingest, put: list[Record], *, args: argparse.Namespace, started: datetime) -> int:
    """The ingest log written (--ingest-log), and the wait for the offline store (--wait-offline): 3 when it does
    not hold every record in time, else 0."""
    logged = [ingest_log.Logged(r.source_ref, r.event_time, r.status) for r in put]
    if args.ingest_log and logged:
        key = ingest_log.write(ingest.s3, args.ingest_log, feature_group=ingest.feature_group, records=logged)
        jobs.event(log, "ingest logged", key=key, records=len(logged))
    if args.wait_offline <= 0 or not logged:
        return 0
    uri = ingest.offline_store_uri()
    arrivals = offline_arrival.Arrivals(ingest.s3, uri, started)
    missing = offline_arrival.wait(arrivals, logged, timeout=args.wait_offline)
    if missing:
        message = offline_arrival.missing_message(missing, total=len(logged), uri=uri, timeout=args.wait_offline)
        print(message, file=sys.stderr)
        return 3
    return 0


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    kind, export = formats.detect(args.labels, args.format)
    classes = ClassMap(args.classes)
    if kind != "csv" and not classes.names:
        raise jobs.JobError(f"--classes: the {kind} export names its classes; give the config's, in class_id order")
    if kind == "csv" and args.status is not None:
        raise jobs.JobError("--status: the CSV gives each row its own status")
    status = args.status or "APPROVED"
    context = Context(images=args.images, classes=classes, status=status, now=started.timestamp())
    read = formats.reader(kind, label_attribute=args.label_attribute)(export, context)
    jobs.event(log, "labels read", format=kind, export=export, records=len(read.labelled), refused=len(read.problems))
    ingest = Ingest(
        args.images, bucket=args.bucket, prefix=args.prefix, feature_group=args.feature_group, workers=args.workers
    )
    refused, put = ingest.all(read.labelled)
    problems = sorted(read.problems + refused, key=lambda problem: problem.place.order)
    for problem in problems:
        print(problem, file=sys.stderr)
    ingested = len(put)
    summary: dict[str, Any] = {
        "feature_group": args.feature_group,
        "ingested": ingested,
        "refused": [{"where": p.place.where, "source_ref": p.source_ref, "reason": p.reason} for p in problems],
    }
    if args.report:
        args.report.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    jobs.event(log, "ingested", feature_group=args.feature_group, records=ingested, refused=len(problems))
    waited = after_put(ingest, put, args=args, started=started)
    return waited or (1 if problems else 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m detector.ingest",
        description=__doc__.split("\n\n")[0],
        epilog=formats.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--labels", type=Path, required=True, help="the label export: file or folder")
    parser.add_argument(
        "--format", choices=formats.FORMATS, default=None, help="the export's format (default: detected)"
    )
    parser.add_argument(
        "--classes", type=_names, default=(), help="the config's class names, comma-separated, in id order"
    )
    parser.add_argument("--images", type=Path, default=None, help="the folder the images are under (default: PATH's)")
    parser.add_argument(
        "--status", choices=STATUSES, default=None, help="the records' status (not CSV; default APPROVED)"
    )
    parser.add_argument(
        "--label-attribute", default=None, help="groundtruth: the job's label attribute (default: its one)"
    )
    parser.add_argument("--bucket", required=True, help="S3 bucket for the images")
    parser.add_argument("--prefix", default="images", help="key prefix for the images (default images)")
    parser.add_argument("--feature-group", required=True)
    parser.add_argument("--workers", type=int, default=8, help="concurrent uploads and PutRecord calls")
    parser.add_argument("--report", type=Path, default=None, help="write the summary as JSON here")
    parser.add_argument("--ingest-log", default=None, help="s3:// prefix to keep the list of records put under")
    parser.add_argument(
        "--wait-offline", type=float, default=0, help="seconds to wait for the offline store to hold them (0: none)"
    )
    return parser


def _names(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated class names, got {value!r}")
    return names


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.images = args.images or (args.labels if args.labels.is_dir() else args.labels.parent)
    args.workers = max(1, args.workers)
    jobs.setup_logging()
    try:
        code = run(args)
    except jobs.JobError as error:
        print(error, file=sys.stderr)
        code = 2
    sys.exit(code)


def exit_now(code: int) -> None:
    """Exit with `code` once every stream is flushed, without the interpreter's teardown: pyarrow's thread pools
    (the offline store's parquet, read while waiting) now and then abort at that teardown, "terminate called
    without an active exception" and exit -6, after all the work is done (apache/arrow#34314, seen here in e2e)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as done:  # argparse's usage errors too
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        exit_now(done.code if isinstance(done.code, int) else (0 if done.code is None else 1))

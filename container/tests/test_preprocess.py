"""Preprocess: offline store to RecordIO, end to end as the Processing job runs it."""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from detector import manifest
from detector.offline_store import STORE_COLUMNS, read_rows
from detector.preprocess import split_of
from detector.records import FEATURES, parse_record
from gluoncv.data import RecordFileDetection

from .conftest import OFFLINE_STORE, WRITTEN, labels, preprocess_args, report, run_job, store

OUTPUT = Path("processing/output")


def lst_paths(root: Path, split: str) -> list[str]:
    lines = (root / OUTPUT / split / f"{split}.lst").read_text(encoding="utf-8").splitlines()
    return [line.rsplit("\t", 1)[1] for line in lines]


def test_the_image_reads_every_column_feature_store_writes(synthetic: Path, tmp_path: Path) -> None:
    # Given the offline store of template.yaml's feature group, as Feature Store writes it
    folder = store(tmp_path, labels(synthetic)[:1])

    # When the image reads it, Then it reads the columns the store has: the same names, in the same order
    [row] = read_rows(folder)
    assert (*FEATURES, *STORE_COLUMNS) == OFFLINE_STORE.columns
    assert tuple(row.values) == OFFLINE_STORE.columns
    assert (row.source_ref, row.deleted, row.values["write_time"]) == (
        labels(synthetic)[0]["source_ref"],
        False,
        WRITTEN,
    )


def test_rec_reads_back_with_the_boxes_of_the_csv(synthetic: Path, splits: Path) -> None:
    # Given the synthetic CSV, When preprocess ran (fixture), Then every image sits in exactly one split
    expected = {row["source_ref"]: parse_record(row) for row in labels(synthetic)}
    seen: list[str] = []
    for split in ("train", "validation", "test"):
        dataset = RecordFileDetection(str(splits / OUTPUT / split / f"{split}.rec"), coord_normalized=True)
        names = lst_paths(splits, split)
        assert len(dataset) == len(names)
        for index, name in enumerate(names):
            image, label = dataset[index]
            record = expected[name]
            assert image.shape == (record.image_height, record.image_width, 3)
            objects = label[label[:, 4] >= 0]
            want = np.array([[*box.corners, box.class_id] for box in record.annotations]).reshape(-1, 5)
            np.testing.assert_allclose(objects, want, atol=0.01)
        seen += names
    assert sorted(seen) == sorted(expected)  # no image lost, none in two splits
    counts = report(splits)["splits"]
    assert sum(split["images"] for split in counts.values()) == len(expected)
    assert all(counts[split]["images"] > 0 for split in counts)


def test_split_stays_put_when_records_are_added(synthetic: Path, splits: Path, tmp_path: Path) -> None:
    # Given the first 24 images and 16 more
    more = tmp_path / "more"
    shutil.copytree(synthetic, more)
    from detector import synth

    synth.generate(more, 40, seed=11)  # images 0-23 are the same ones
    store(tmp_path, labels(more))
    # When preprocess runs again on the larger store
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(more))
    assert result.returncode == 0, result.stderr
    # Then every earlier image kept its split
    for split in ("train", "validation", "test"):
        assert set(lst_paths(splits, split)) <= set(lst_paths(tmp_path, split))
        assert all(split_of(name, (0.6, 0.2, 0.2)) == split for name in lst_paths(tmp_path, split))


def test_latest_record_wins_and_rejected_or_deleted_ones_are_dropped(synthetic: Path, tmp_path: Path) -> None:
    rows = labels(synthetic)[:6]
    store(tmp_path, rows)
    later = WRITTEN + timedelta(hours=2)
    newer_time = str(float(rows[0]["event_time"]) + 10)
    store(tmp_path, [{**rows[0], "status": "REJECTED", "event_time": newer_time}], later)
    store(tmp_path, [{**rows[1], "event_time": str(float(rows[1]["event_time"]) + 10)}], later, deleted=True)
    store(tmp_path, [{**rows[2], "annotations": "[]", "event_time": str(float(rows[2]["event_time"]) - 10)}], later)
    result = run_job(
        "detector.preprocess",
        tmp_path,
        *preprocess_args(synthetic, "--train-ratio", "1", "--validation-ratio", "0", "--test-ratio", "0"),
    )
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    reasons = {entry["source_ref"]: entry["reason"] for entry in data["dropped"]}
    assert reasons == {rows[0]["source_ref"]: "status REJECTED", rows[1]["source_ref"]: "deleted"}
    assert data["records_read"] == 9
    assert data["images"] == 4
    # the older, empty re-label of rows[2] lost to its newer record: its boxes are still there
    dataset = RecordFileDetection(str(tmp_path / OUTPUT / "train" / "train.rec"))
    index = lst_paths(tmp_path, "train").index(rows[2]["source_ref"])
    assert (dataset[index][1][:, 4] >= 0).sum() == len(parse_record(rows[2]).annotations)


def test_bad_records_are_reported_and_the_rest_goes_in(synthetic: Path, tmp_path: Path) -> None:
    rows = labels(synthetic)[:8]
    data = tmp_path / "data"
    shutil.copytree(synthetic, data)
    (data / rows[3]["source_ref"]).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (data / rows[4]["source_ref"]).write_bytes((data / rows[4]["source_ref"]).read_bytes()[:2000])  # truncated
    bad = [
        {**rows[0], "annotations": "[{'class_id': 0, 'top': 1"},
        {**rows[1], "source_ref": "images/missing.jpg"},
        {**rows[2], "annotations": '[{"class_id": 0, "top": 250, "left": 10, "height": 90, "width": 20}]'},
        rows[3],
        rows[4],
        {**rows[5], "image_width": "640"},
        {**rows[6], "annotations": '[{"class_id": 3, "top": 10, "left": 10, "height": 20, "width": 20}]'},
        rows[7],
    ]
    store(tmp_path, bad)
    result = run_job(
        "detector.preprocess",
        tmp_path,
        *preprocess_args(data, "--train-ratio", "1", "--validation-ratio", "0", "--test-ratio", "0"),
    )
    assert result.returncode == 0, result.stderr
    reasons = {entry["source_ref"]: entry["reason"] for entry in report(tmp_path)["dropped"]}
    assert "neither JSON nor a Python literal" in reasons[rows[0]["source_ref"]]
    assert "images/missing.jpg" in reasons
    assert "No such file" in reasons["images/missing.jpg"]
    assert "lies outside the 450x300 image" in reasons[rows[2]["source_ref"]]
    assert "corrupt or truncated" in reasons[rows[3]["source_ref"]]
    assert "corrupt or truncated" in reasons[rows[4]["source_ref"]]
    assert "is 450x300 but the record says 640x300" in reasons[rows[5]["source_ref"]]
    assert "class_id: 3 but there are 1 classes" in reasons[rows[6]["source_ref"]]
    assert lst_paths(tmp_path, "train") == [rows[7]["source_ref"]]


def test_empty_feature_group_fails_with_one_line_reason(tmp_path: Path) -> None:
    (tmp_path / "processing" / "input" / "offline-store").mkdir(parents=True)
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(tmp_path))
    assert result.returncode == 1
    reason = "feature group scratches: the offline store holds no records"
    assert result.stderr.strip().splitlines()[-1] == reason
    assert result.failure() == reason


def test_no_usable_image_fails_and_still_reports_why(synthetic: Path, tmp_path: Path) -> None:
    store(tmp_path, [{**row, "status": "REJECTED"} for row in labels(synthetic)[:3]])
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(synthetic))
    assert result.returncode == 1
    assert "no usable image as of " in result.failure()
    assert "(3 records dropped, 0 rows written after it" in result.failure()
    assert len(report(tmp_path)["dropped"]) == 3


def test_ratios_that_do_not_add_up_are_refused(tmp_path: Path) -> None:
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(tmp_path, "--test-ratio", "0.5"))
    assert result.returncode == 2
    assert "must add up to 1" in result.stderr


def test_images_are_fetched_from_s3(synthetic: Path, tmp_path: Path, aws_env: dict[str, str]) -> None:
    # Given the images in a (moto) bucket and records whose source_ref is the S3 URI
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="images")
    rows = labels(synthetic)[:5]
    for row in rows:
        s3.upload_file(str(synthetic / row["source_ref"]), "images", f"raw/{row['source_ref']}")
    store(tmp_path, [{**row, "source_ref": f"s3://images/raw/{row['source_ref']}"} for row in rows[:4]])
    store(tmp_path, [{**rows[4], "source_ref": "s3://images/raw/gone.jpg"}])
    # When preprocess runs
    result = run_job(
        "detector.preprocess",
        tmp_path,
        *preprocess_args(synthetic, "--train-ratio", "1", "--validation-ratio", "0", "--test-ratio", "0"),
        env=aws_env,
    )
    # Then the four images are packed and the missing object is reported
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert data["images"] == 4
    [gone] = data["dropped"]
    assert gone["source_ref"] == "s3://images/raw/gone.jpg"
    assert gone["reason"].startswith("image s3://images/raw/gone.jpg: no version at or before the as-of time ")
    packed = RecordFileDetection(str(tmp_path / OUTPUT / "train" / "train.rec"))
    assert packed[0][0].shape == (300, 450, 3)


@pytest.mark.parametrize("ratios", [(0.7, 0.15, 0.15), (0.5, 0.5, 0.0)])
def test_hash_split_follows_the_ratios(ratios: tuple[float, float, float]) -> None:
    names = [f"s3://bucket/images/{index}.jpg" for index in range(4000)]
    chosen = [split_of(name, ratios) for name in names]
    for split, ratio in zip(("train", "validation", "test"), ratios, strict=True):
        assert abs(chosen.count(split) / len(names) - ratio) < 0.03


# --- the as-of time (DataAsOf) and the manifest ---------------------------------------------------------------------


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def manifest_of(root: Path) -> list[manifest.Entry]:
    return manifest.loads((root / OUTPUT / "report" / manifest.MANIFEST_FILE).read_bytes())


ALL_TRAIN = ("--train-ratio", "1", "--validation-ratio", "0", "--test-ratio", "0")


def versioned_bucket(s3: Any) -> str:
    """A new versioned bucket of its own (the moto server is the session's)."""
    bucket = f"images-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def test_the_as_of_cut_keeps_exactly_the_rows_written_at_or_before_it(synthetic: Path, tmp_path: Path) -> None:
    # Given rows written at three times, and a relabel of an early image written after the as-of time
    rows = labels(synthetic)[:6]
    early, at, late = WRITTEN, WRITTEN + timedelta(hours=1), WRITTEN + timedelta(hours=2)
    store(tmp_path, rows[:2], early)
    store(tmp_path, rows[2:4], at)  # written exactly at the as-of time: in
    store(tmp_path, rows[4:], late)
    relabel = {**rows[0], "annotations": "[]", "event_time": str(float(rows[0]["event_time"]) + 10)}
    store(tmp_path, [relabel], late)
    # When preprocess runs as of the middle time
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(synthetic, *ALL_TRAIN, "--data-as-of", iso(at)))
    # Then exactly the four rows written at or before it went in, rows[0] with its labels as they were then
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    assert data["as_of"] == "2026-01-02T04:04:05.000Z"
    assert (data["records_read"], data["written_after_as_of"], data["images"]) == (7, 3, 4)
    entries = {entry.source_ref: entry for entry in manifest_of(tmp_path)}
    assert sorted(entries) == sorted(row["source_ref"] for row in rows[:4])
    assert entries[rows[0]["source_ref"]].boxes == len(parse_record(rows[0]).annotations) > 0
    assert entries[rows[2]["source_ref"]].write_time == "2026-01-02T04:04:05.000Z"
    assert data["dropped"] == []


def test_rows_without_a_write_time_are_refused_with_the_reason(synthetic: Path, tmp_path: Path) -> None:
    # Given an offline-store file whose rows lack write_time
    rows = labels(synthetic)[:3]
    store(tmp_path, rows[:2])
    table = OFFLINE_STORE.table(rows[2:], WRITTEN)
    table = table.set_column(
        table.schema.get_field_index("write_time"), "write_time", pa.nulls(1, pa.timestamp("ms", tz="UTC"))
    )
    folder = tmp_path / "processing/input/offline-store/year=2026/month=01/day=02/hour=03"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "no-write-time.parquet")
    # When preprocess runs, Then that row is refused, named, and the rest go in
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(synthetic, *ALL_TRAIN))
    assert result.returncode == 0, result.stderr
    data = report(tmp_path)
    [refused] = data["dropped"]
    assert refused["source_ref"] == rows[2]["source_ref"]
    assert refused["file"].endswith("no-write-time.parquet")
    assert refused["reason"].startswith("write_time: missing")
    assert data["images"] == 2


@pytest.mark.parametrize(
    ("as_of", "problem"),
    [
        ("2026-01-02 03:04", "has no UTC offset"),
        ("yesterday", "is not an ISO 8601 time"),
        ("2999-01-01T00:00:00Z", "is after the job's start"),
    ],
)
def test_a_malformed_or_future_as_of_time_ends_the_job(tmp_path: Path, as_of: str, problem: str) -> None:
    store(tmp_path, [])
    result = run_job("detector.preprocess", tmp_path, *preprocess_args(tmp_path, "--data-as-of", as_of))
    assert result.returncode == 1
    assert result.failure().startswith("--data-as-of: ")
    assert problem in result.failure()


def test_the_manifest_lists_every_image_of_every_split(synthetic: Path, splits: Path) -> None:
    # Given preprocess ran on local images (fixture), Then the manifest names exactly each split's images, in order
    entries = manifest_of(splits)
    for split in ("train", "validation", "test"):
        assert [e.source_ref for e in entries if e.split == split] == sorted(lst_paths(splits, split))
    by_ref = {row["source_ref"]: row for row in labels(synthetic)}
    for entry in entries:
        assert entry.version_id is None  # a local path has no version
        assert entry.sha256 == hashlib.sha256((synthetic / entry.source_ref).read_bytes()).hexdigest()
        assert entry.annotations_sha256 == manifest.annotations_sha256(
            parse_record(by_ref[entry.source_ref]).annotations
        )
    data = report(splits)
    raw = (splits / OUTPUT / "report" / manifest.MANIFEST_FILE).read_bytes()
    assert data["manifest"] == {"file": "manifest.jsonl", "sha256": manifest.digest(raw), "images": len(entries)}


def test_s3_images_are_read_at_their_version_as_of_the_time(
    synthetic: Path, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    # Given images in a versioned (moto) bucket, one deleted before the as-of time, and after it one image
    # overwritten, one deleted and one put for the first time
    s3 = boto3.client("s3")
    bucket = versioned_bucket(s3)
    rows = labels(synthetic)[:5]
    refs = [f"s3://{bucket}/raw/{row['source_ref']}" for row in rows]
    originals = [(synthetic / row["source_ref"]).read_bytes() for row in rows]
    first = [
        s3.put_object(Bucket=bucket, Key=f"raw/{row['source_ref']}", Body=data)["VersionId"]
        for row, data in zip(rows[:4], originals[:4], strict=True)
    ]
    s3.put_object(Bucket=bucket, Key=f"raw/{rows[0]['source_ref']}.bak", Body=b"a longer key, not a version")
    s3.delete_object(Bucket=bucket, Key=f"raw/{rows[3]['source_ref']}")  # deleted before
    time.sleep(1.2)
    at = datetime.now(UTC)
    time.sleep(1.2)
    s3.put_object(Bucket=bucket, Key=f"raw/{rows[0]['source_ref']}", Body=originals[1])  # overwritten
    s3.delete_object(Bucket=bucket, Key=f"raw/{rows[1]['source_ref']}")  # deleted after: still read
    s3.put_object(Bucket=bucket, Key=f"raw/{rows[4]['source_ref']}", Body=originals[4])  # not there yet
    store(tmp_path, [{**row, "source_ref": ref} for row, ref in zip(rows, refs, strict=True)])
    # When preprocess runs as of that time
    result = run_job(
        "detector.preprocess", tmp_path, *preprocess_args(synthetic, *ALL_TRAIN, "--data-as-of", iso(at)), env=aws_env
    )
    # Then it read each image as it was then: the original bytes of the versions current at that time
    assert result.returncode == 0, result.stderr
    entries = {entry.source_ref: entry for entry in manifest_of(tmp_path)}
    assert sorted(entries) == sorted(refs[:3])
    for ref, version, data in zip(refs[:3], first[:3], originals[:3], strict=True):
        assert (entries[ref].version_id, entries[ref].sha256) == (version, hashlib.sha256(data).hexdigest())
    # and the image deleted then, and the one not put yet, were dropped with the reason
    reasons = {entry["source_ref"]: entry["reason"] for entry in report(tmp_path)["dropped"]}
    assert sorted(reasons) == sorted(refs[3:])
    assert "deleted at or before the as-of time" in reasons[refs[3]]
    assert "no version at or before the as-of time" in reasons[refs[4]]

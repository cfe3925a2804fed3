"""The local feature store's offline store lags as AWS's does: PutRecord's data reaches the online store at once and
the offline store in batches, one file per event-time hour, after the configured delay; `flush()` writes what waits.

Services: moto on loopback (S3, the feature group's definition) and the local feature-store runtime on loopback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from local.emulator import reset_moto
from local.featurestore import DEFAULT_DELAY, DELAY_ENV, FeatureStore, FeatureStoreServer, delay_seconds
from local.template import feature_group_request
from sam_stack.template import Template

BUCKET = "lag-data"
GROUP = "lag-labels"
# 2026-01-02 03:04:05 UTC and 05:06:07 UTC: two hours' partitions
THREE_O_FOUR, FIVE_O_SIX = 1767323045.0, 1767330367.0


@pytest.fixture
def group(aws_env: dict[str, str], moto_endpoint: str) -> Iterator[str]:
    """The template's feature group in moto, its offline store in the test's bucket; its resolved store prefix."""
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    request = {**feature_group_request(Template.load()), "FeatureGroupName": GROUP}
    request["OfflineStoreConfig"]["S3StorageConfig"]["S3Uri"] = f"s3://{BUCKET}/offline-store"
    boto3.client("sagemaker").create_feature_group(**request)
    described = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=GROUP)
    yield str(described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]).split(f"s3://{BUCKET}/")[1]
    reset_moto(moto_endpoint)


def serve(moto_endpoint: str, delay: float) -> tuple[FeatureStoreServer, Any]:
    server = FeatureStoreServer(FeatureStore(moto_endpoint, offline_delay=delay)).start()
    return server, boto3.client("sagemaker-featurestore-runtime", endpoint_url=server.endpoint)


def put(runtime: Any, source_ref: str, event_time: float) -> None:
    values = {
        "source_ref": source_ref, "image_width": "8", "image_height": "8", "image_depth": "3", "annotations": "[]",
        "event_time": repr(event_time), "labeling_job": "job", "status": "APPROVED",
    }  # fmt: skip
    record = [{"FeatureName": name, "ValueAsString": value} for name, value in values.items()]
    runtime.put_record(FeatureGroupName=GROUP, Record=record)


def stored(prefix: str) -> dict[str, list[dict[str, Any]]]:
    """The offline store's files (key under `prefix`) and their rows."""
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    files = {}
    for item in listed:
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        files[item["Key"][len(prefix) :].lstrip("/")] = pq.read_table(
            pa.BufferReader(body), pre_buffer=False
        ).to_pylist()
    return files


def test_a_record_is_online_at_once_and_offline_after_the_delay_in_its_event_times_partition(
    group: str, moto_endpoint: str
) -> None:
    # Given a store whose offline writes lag 1.5 s
    server, runtime = serve(moto_endpoint, 1.5)
    try:
        # When three records come, two of 03:04 and one of 05:06 (event time)
        put(runtime, "s3://b/a.jpg", THREE_O_FOUR)
        put(runtime, "s3://b/b.jpg", THREE_O_FOUR - 60)
        put(runtime, "s3://b/c.jpg", FIVE_O_SIX)
        sent = datetime.now(UTC)

        # Then GetRecord finds them at once, and the offline store holds nothing yet
        found = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="s3://b/a.jpg")
        assert found["Record"]
        assert stored(group) == {}

        # And after the delay, one file per event-time hour, named after the latest event time in it
        deadline = time.monotonic() + 10
        while len(files := stored(group)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        early, late = sorted(files)
        assert re.fullmatch(r"year=2026/month=01/day=02/hour=03/20260102T030405Z_[0-9a-z]{16}\.parquet", early)
        assert re.fullmatch(r"year=2026/month=01/day=02/hour=05/20260102T050607Z_[0-9a-z]{16}\.parquet", late)
        assert sorted(row["source_ref"] for row in files[early]) == ["s3://b/a.jpg", "s3://b/b.jpg"]
        # written once for the batch, each call's own invocation time before it
        rows = files[early] + files[late]
        assert len({row["write_time"] for row in rows}) == 1
        assert all(row["api_invocation_time"] <= sent <= row["write_time"] for row in rows)
        assert not any(row["is_deleted"] for row in rows)
    finally:
        server.stop()


def test_flush_writes_what_waits_at_once_and_stopping_the_server_loses_nothing(group: str, moto_endpoint: str) -> None:
    # Given a store that lags ten minutes, with one record waiting
    server, runtime = serve(moto_endpoint, 600)
    put(runtime, "s3://b/a.jpg", THREE_O_FOUR)
    assert server.store.offline_writer.waiting() == 1

    # When it is flushed
    written = server.store.flush()

    # Then the record is in the offline store now
    assert written == 1
    assert [row["source_ref"] for rows in stored(group).values() for row in rows] == ["s3://b/a.jpg"]

    # And a record still waiting when the server stops is written as it stops
    put(runtime, "s3://b/b.jpg", THREE_O_FOUR)
    server.stop()
    assert sorted(row["source_ref"] for rows in stored(group).values() for row in rows) == [
        "s3://b/a.jpg",
        "s3://b/b.jpg",
    ]


def test_a_delete_reaches_the_offline_store_with_the_same_lag(group: str, moto_endpoint: str) -> None:
    server, runtime = serve(moto_endpoint, 600)
    try:
        put(runtime, "s3://b/a.jpg", THREE_O_FOUR)
        runtime.delete_record(
            FeatureGroupName=GROUP, RecordIdentifierValueAsString="s3://b/a.jpg", EventTime=repr(THREE_O_FOUR + 1)
        )
        assert stored(group) == {}
        server.store.flush()
        rows = [row for rows in stored(group).values() for row in rows]
        assert sorted(bool(row["is_deleted"]) for row in rows) == [False, True]
    finally:
        server.stop()


def test_the_delay_comes_from_the_argument_the_environment_or_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DELAY_ENV, raising=False)
    assert delay_seconds() == DEFAULT_DELAY
    assert delay_seconds(0) == 0
    monkeypatch.setenv(DELAY_ENV, "0.25")
    assert delay_seconds() == 0.25
    monkeypatch.setenv(DELAY_ENV, "soon")
    with pytest.raises(ValueError, match=f"{DELAY_ENV}: 'soon' is not a number of seconds"):
        delay_seconds()
    with pytest.raises(ValueError, match=f"{DELAY_ENV}: -1"):
        delay_seconds(-1)


def test_a_batch_s3_refuses_waits_for_the_next_write(group: str, moto_endpoint: str) -> None:
    # Given a waiting record, and its offline store's bucket gone
    server, runtime = serve(moto_endpoint, 600)
    try:
        put(runtime, "s3://b/a.jpg", THREE_O_FOUR)
        boto3.client("s3").delete_bucket(Bucket=BUCKET)

        # When the batch is written, it fails, and the record still waits
        with pytest.raises(ClientError, match="NoSuchBucket"):
            server.store.flush()
        assert server.store.offline_writer.waiting() == 1

        # Then once the bucket is back, the next write takes it
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        assert server.store.flush() == 1
        assert [row["source_ref"] for rows in stored(group).values() for row in rows] == ["s3://b/a.jpg"]
    finally:
        server.stop()


def test_records_a_killed_store_had_waiting_are_written_by_the_next_one(
    group: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a store with a journal, killed (never stopped) while two records wait
    journal = tmp_path / "pending.jsonl"
    killed = FeatureStore(moto_endpoint, offline_delay=600, journal=journal)
    server = FeatureStoreServer(killed).start()
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=server.endpoint)
    put(runtime, "s3://b/a.jpg", THREE_O_FOUR)
    put(runtime, "s3://b/b.jpg", FIVE_O_SIX)
    server.httpd.shutdown()
    server.httpd.server_close()

    # When the next store starts on the same journal
    started = FeatureStore(moto_endpoint, offline_delay=600, journal=journal)
    replayed = started.replay()

    # Then the two wait again, and are written with the calls' own invocation times
    assert (replayed, started.offline_writer.waiting()) == (2, 2)
    assert started.flush() == 2
    rows = [row for rows in stored(group).values() for row in rows]
    assert sorted(row["source_ref"] for row in rows) == ["s3://b/a.jpg", "s3://b/b.jpg"]
    assert all(row["api_invocation_time"] < row["write_time"] for row in rows)
    assert journal.read_text() == ""
    started.close()

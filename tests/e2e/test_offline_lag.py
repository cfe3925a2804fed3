"""The offline store lags, as AWS's does ("within 15 minutes" of PutRecord): a run started right after an ingest
trains on what the store holds, and says how many approved records exist that it could not see yet. Its own stack,
whose offline store is ten minutes behind."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local import drive
from local.stack import LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run, start_stack

LATE = 5  # records ingested after the store's last write


@pytest.fixture
def lagging_stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = start_stack(tmp_path / "work", offline_store_delay=600)
    yield stack
    stack.stop()


def offline_rows(stack: LocalStack) -> list[str]:
    """The source_refs of every row of the stack's offline store."""
    bucket, _, prefix = stack.offline_store_uri.removeprefix("s3://").partition("/")
    s3 = stack.aws["s3"]
    refs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            refs += pq.read_table(pa.BufferReader(body), columns=["source_ref"], pre_buffer=False)[
                "source_ref"
            ].to_pylist()
    return sorted(refs)


def preprocess(api: Api, run_id: str) -> dict[str, Any]:
    """GET /runs/{run_id} once its Preprocess step has ended; the run is stopped then (training is not the test)."""
    detail = drive.until(
        lambda: dict(api.call("GET", f"/runs/{run_id}")[1]),
        lambda d: any(s["name"] == "Preprocess" and s["status"] in {"Succeeded", "Failed"} for s in d["steps"]),
        timeout=180,
        every=1,
        waited=f"run {run_id}'s Preprocess",
    )
    api.call("POST", f"/runs/{run_id}/stop")
    drive.follow(api, run_id)
    [step] = [s for s in detail["steps"] if s["name"] == "Preprocess"]
    assert step["status"] == "Succeeded", step
    return detail


def test_a_run_started_right_after_an_ingest_reports_the_approved_records_the_offline_store_lacks(
    lagging_stack: LocalStack, tmp_path: Path
) -> None:
    api = drive.api(lagging_stack.api.url, LOCAL_USER_KEY)
    # Given 16 records the offline store holds, then LATE more just ingested (all approved), which it does not yet
    drive.synthesize(tmp_path / "early", count=16)
    drive.ingest(lagging_stack, tmp_path / "early", wait_offline=0)
    assert lagging_stack.featurestore.flush() == 16
    drive.synthesize(tmp_path / "late", count=LATE, options=("--seed", "8"))
    drive.ingest(lagging_stack, tmp_path / "late", wait_offline=0)
    with (tmp_path / "late" / "labels.csv").open() as file:
        assert {row["status"] for row in csv.DictReader(file)} == {"APPROVED"}

    # When a run starts at once
    early = preprocess(api, start_run(api, {"MapThreshold": 0.0}))

    # Then it trained on the 16, and GET /runs/{id} says LATE approved records were not in the store yet
    assert early["dataset"]["images"] == 16
    assert early["dataset"]["not_in_offline_store"] == LATE

    # And a run started once the store holds them trains on them all, and misses nothing
    assert lagging_stack.featurestore.flush() == LATE
    caught_up = preprocess(api, start_run(api, {"MapThreshold": 0.0}))
    assert caught_up["dataset"]["images"] == 16 + LATE
    assert caught_up["dataset"]["not_in_offline_store"] == 0


def test_records_on_their_way_to_the_offline_store_survive_a_graceful_stop(tmp_path: Path) -> None:
    # Given a stack whose offline store is ten minutes behind, stopped right after an ingest
    first = start_stack(tmp_path, persist=True, offline_store_delay=600)
    try:
        drive.synthesize(tmp_path / "data", count=3)
        drive.ingest(first, tmp_path / "data", wait_offline=0)
        assert offline_rows(first) == []
    finally:
        first.stop()

    # When it starts again
    second = LocalStack(work=tmp_path, persist=True, function_log=tmp_path / "functions.log").start()
    try:
        rows = offline_rows(second)
    finally:
        second.stop()

    # Then the records are in the offline store: the stop wrote them before it saved the buckets
    with (tmp_path / "data" / "labels.csv").open() as file:
        assert rows == sorted(f"s3://{second.bucket}/images/{row['source_ref']}" for row in csv.DictReader(file))

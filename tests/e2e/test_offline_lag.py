"""The offline store lags, as AWS's does ("within 15 minutes" of PutRecord): a run started right after an ingest
trains on what the store holds, and says how many approved records exist that it could not see yet. Its own stack,
whose offline store is ten minutes behind."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import drive
from local.stack import LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run, start_stack

LATE = 5  # records ingested after the store's last write


@pytest.fixture(scope="module")
def lagging_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work = tmp_path_factory.mktemp("lagging")
    stack = start_stack(work, offline_store_delay=600)
    yield stack
    stack.stop()


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

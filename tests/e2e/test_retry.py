"""Retrying a failed run: its own stack, which starts with no labelled data at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local import drive
from local.drive import follow
from local.stack import LOCAL_USER_KEY, LocalStack
from tests.e2e.conftest import ingest, start_run, start_stack


@pytest.fixture
def empty_stack(tmp_path: Path) -> Iterator[LocalStack]:
    stack = start_stack(tmp_path)
    yield stack
    stack.stop()


def test_a_retry_keeps_its_data_as_of_time_and_a_new_run_reads_what_arrived_since(
    empty_stack: LocalStack, tmp_path: Path
) -> None:
    api = drive.api(empty_stack.api.url, LOCAL_USER_KEY)

    # Given a run that failed at Preprocess: the feature group has no records yet
    run_id = start_run(api, {"MapThreshold": 0.0})
    failed = follow(api, run_id)
    assert failed["status"] == "Failed"
    assert [(s["name"], s["status"]) for s in failed["steps"]] == [("Preprocess", "Failed")]
    assert "no data at" in failed["steps"][0]["failure_reason"]

    # When the data arrives and the run is retried
    ingest(empty_stack, tmp_path / "dataset")
    status, retried = api.call("POST", f"/runs/{run_id}/retry")
    detail = follow(api, run_id)

    # Then the same run goes on from the failed step on the data as of its own time (a retry trains on the same
    # data): none of the records written since, which it counts
    assert (status, retried["status"]) == (200, "Executing")
    assert detail["status"] == "Failed"
    assert detail["parameters"]["DataAsOf"] == failed["parameters"]["DataAsOf"]
    reason = detail["steps"][0]["failure_reason"]
    assert f"no usable image as of {failed['parameters']['DataAsOf']}" in reason
    assert "rows written after it" in reason

    # and a new run reads them and registers its model
    second = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert second["status"] == "Succeeded"
    assert [s["name"] for s in second["steps"]] == ["Preprocess", "Train", "Evaluate", "CheckMap", "Register"]
    assert second["dataset"]["written_after_as_of"] == 0
    # a retry of a run that succeeded is refused
    assert api.call("POST", f"/runs/{second['run_id']}/retry")[0] == 409

"""A run's dataset is pinned: Preprocess as the pipeline's role (SageMakerExecutionRole, authorised by the local IAM
against template.yaml's policy) over the stack's versioned bucket, run again with the same DataAsOf after the data
moved on.

Services: moto on loopback with the template's resources; the job runs in container/.venv as Processing would.
"""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.iam import enforce, roles
from local.iam.process import DENIALS_ENV, IDENTITY_ENV
from sam_stack.container import run_module
from sam_stack.offline_store import OfflineStore
from tests.integration.conftest import Stack

WRITTEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def images(folder: Path, count: int) -> list[dict[str, str]]:
    """`count` synthetic labelled images in `folder`; their labels.csv rows."""
    made = run_module("detector.synth", "--output", str(folder), "--count", str(count), "--seed", "5", env={})
    assert made.returncode == 0, made.stderr
    with (folder / "labels.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def preprocess(stack: Stack, job: Path, store: Path, *as_of: str) -> dict[str, Any]:
    """Preprocess as the pipeline's role over `store` (what SageMaker downloads for the job); its dataset report."""
    identity = job / "identity.json"
    job.mkdir(parents=True)
    identity.write_text(json.dumps(roles.identities()["SageMakerExecutionRole"].to_json()))
    denials = job / "denials.jsonl"
    done = run_module(
        "detector.preprocess", "--feature-group", "labels", "--classes", "scratch", "--input", str(store),
        "--train-ratio", "0.5", "--validation-ratio", "0.25", "--test-ratio", "0.25", *as_of,
        env={"OPT_ML_ROOT": str(job), IDENTITY_ENV: str(identity), DENIALS_ENV: str(denials)}, timeout=300,
    )  # fmt: skip
    if denials.is_file():
        enforce.record_denials(denials.read_text().splitlines())
    assert enforce.take() == []  # the role allows every call the job made
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads((job / "processing/output/report/dataset_report.json").read_text())
    return report


@pytest.fixture
def data(stack: Stack, tmp_path: Path) -> tuple[list[dict[str, str]], Path]:
    """Six labelled images in the stack's (versioned) bucket, and an offline store naming them."""
    folder = tmp_path / "data"
    rows = images(folder, 6)
    bucket = stack.values["ArtifactBucket"]
    for row in rows:
        stack.aws["s3"].upload_file(str(folder / row["source_ref"]), bucket, f"images/{row['source_ref']}")
    rows = [{**row, "source_ref": f"s3://{bucket}/images/{row['source_ref']}"} for row in rows]
    store = tmp_path / "offline-store"
    OfflineStore.of_template().write(store, rows, WRITTEN)
    return rows, folder


def test_a_rerun_and_a_retry_with_the_same_as_of_read_the_same_data_after_it_changed(
    stack: Stack, data: tuple[list[dict[str, str]], Path], tmp_path: Path
) -> None:
    rows, folder = data
    store = tmp_path / "offline-store"
    time.sleep(1.1)  # S3 keeps whole seconds: the as-of time after the uploads' second
    as_of = datetime.now(UTC).isoformat()
    # Given a run's Preprocess as of now
    first = preprocess(stack, tmp_path / "run1", store, "--data-as-of", as_of)
    time.sleep(1.1)
    # When the data moves on: an image overwritten in the bucket, a record relabelled and a new one put since
    bucket = stack.values["ArtifactBucket"]
    key = rows[0]["source_ref"].split(f"s3://{bucket}/", 1)[1]
    other = (folder / rows[1]["source_ref"].split("/images/", 1)[1]).read_bytes()
    stack.aws["s3"].put_object(Bucket=bucket, Key=key, Body=other)
    later = datetime.now(UTC) + timedelta(seconds=1)
    relabel = {**rows[2], "annotations": "[]", "event_time": str(float(rows[2]["event_time"]) + 60)}
    OfflineStore.of_template().write(store, [relabel], later)
    # Then a rerun with the same DataAsOf (and a retry, the same job again) reads exactly the same data
    rerun = preprocess(stack, tmp_path / "run2", store, "--data-as-of", as_of)
    retry = preprocess(stack, tmp_path / "run2-retry", store, "--data-as-of", as_of)
    assert first["manifest"] == rerun["manifest"] == retry["manifest"]
    assert first["manifest"]["images"] == 6
    assert (rerun["as_of"], rerun["written_after_as_of"]) == (first["as_of"], 1)
    # while a run as of now reads the new bytes and the new labels: another digest
    now = preprocess(stack, tmp_path / "run3", store)
    assert now["manifest"]["sha256"] != first["manifest"]["sha256"]
    assert now["written_after_as_of"] == 0

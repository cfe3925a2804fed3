"""`make ingest ENV=dev DATASET=dir`: a labelled folder into the deployed stack, with your credentials: each image
into the stack's bucket (under datasets/<folder name>/, which the pipeline's role reads), and one record per image
into the stack's feature group (PutRecord), by the container's own `detector.ingest`.

DATASET holds `labels.csv` in the feature group's schema and the images its `source_ref`s name, relative to it
(the layout `make run DATASET=dir` reads).

Feature Store writes PutRecord's data to the offline store, which the pipeline reads, in batches "within 15 minutes":
ingest keeps the list of records it put (pipeline_def.names.ingest_log_uri; each run's dataset report counts those
the store does not hold yet) and waits until the offline store holds them all (listing and reading the store's
prefix with your credentials), printing progress; exit code 3 names what has not arrived after OFFLINE_WAIT_SECONDS.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from pipeline_def.names import ingest_log_uri
from rollout.environments import Environment, RolloutError
from rollout.stack import outputs
from sam_stack.container import CONTAINER, CONTAINER_BIN

CONTAINER_PYTHON = CONTAINER_BIN / "python"
# AWS's documented 15 minutes, and a margin
OFFLINE_WAIT_SECONDS = 20 * 60


def command(
    dataset: Path, *, bucket: str, group: str, python: Path = CONTAINER_PYTHON, wait: float = OFFLINE_WAIT_SECONDS
) -> list[str]:
    return [
        str(python), "-m", "detector.ingest", "--labels", str(dataset / "labels.csv"), "--images", str(dataset),
        "--bucket", bucket, "--prefix", f"datasets/{dataset.name}", "--feature-group", group,
        "--ingest-log", ingest_log_uri(bucket, group), "--wait-offline", str(wait),
    ]  # fmt: skip


def ingest(
    env: Environment,
    session: boto3.Session,
    dataset: Path,
    *,
    python: Path = CONTAINER_PYTHON,
    wait: float = OFFLINE_WAIT_SECONDS,
) -> int:
    """Checks everything it can before it writes anything; returns ingest's exit code (1: some rows refused, 3: the
    offline store does not hold every record in time)."""
    dataset = dataset.resolve()
    if not (dataset / "labels.csv").is_file():
        raise RolloutError(f"{dataset}: no labels.csv (DATASET is a folder with labels.csv and its images)")
    found = outputs(session.client("cloudformation"), env.stack_name)
    if "FeatureGroupName" not in found or "ArtifactBucketName" not in found:
        raise RolloutError(
            f"{env.stack_name} is not deployed (or predates its feature group): `make deploy ENV={env.name}`"
        )
    group, bucket = found["FeatureGroupName"], found["ArtifactBucketName"]
    try:
        status = session.client("sagemaker").describe_feature_group(FeatureGroupName=group)["FeatureGroupStatus"]
    except ClientError as error:
        raise RolloutError(f"feature group {group}: {error.response.get('Error', {}).get('Message', error)}") from error
    if status != "Created":
        raise RolloutError(f"feature group {group} is {status}, not Created: try again when it is")
    region = str(session.region_name)
    environment = {**os.environ, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "PYTHONPATH": str(CONTAINER)}
    print(f"ingesting {dataset} into s3://{bucket}/datasets/{dataset.name}/ and feature group {group}")
    # our own entry point, with arguments from the stack's outputs and a checked folder
    arguments = command(dataset, bucket=bucket, group=group, python=python, wait=wait)
    return subprocess.run(arguments, env=environment, check=False).returncode  # noqa: S603

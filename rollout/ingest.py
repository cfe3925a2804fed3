"""`make ingest ENV=dev DATASET=path [FORMAT=coco]`: a label export and its images into the deployed stack, with your
credentials: each image into the stack's bucket (under datasets/<folder name>/, which the pipeline's role reads), and
one record per image into the stack's feature group (PutRecord), by the container's own `detector.ingest`.

DATASET is a folder (or a file in it) holding a label export: `labels.csv` in the feature group's schema (the layout
`make run DATASET=dir` reads), COCO JSON, Pascal VOC XML, YOLO txt with its class list, or a Ground Truth output
manifest, and the images it names. FORMAT names the format when the folder's layout does not (detector.labels.formats
says how it is detected). The export's classes are mapped by name to the deployed config's (the stack's SSM config
parameter; the repository's config/pipeline.yaml while the stack has none yet).

Feature Store writes PutRecord's data to the offline store, which the pipeline reads, in batches "within 15 minutes":
ingest keeps the list of records it put (pipeline_def.names.ingest_log_uri; each run's dataset report counts those
the store does not hold yet) and waits until the offline store holds them all (listing and reading the store's
prefix with your credentials), printing progress; exit code 3 names what has not arrived after OFFLINE_WAIT_SECONDS.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from pipeline_def.config import ConfigError, PipelineConfig
from pipeline_def.names import ingest_log_uri
from rollout.environments import Environment, RolloutError
from rollout.quotas import CONFIG, load_config
from rollout.stack import outputs
from sam_stack.container import CONTAINER, CONTAINER_BIN

CONTAINER_PYTHON = CONTAINER_BIN / "python"
# AWS's documented 15 minutes, and a margin
OFFLINE_WAIT_SECONDS = 20 * 60


@dataclass(frozen=True)
class Target:
    """Where the records go: the stack's bucket and feature group, and the config's classes (in class_id order)."""

    bucket: str
    group: str
    classes: tuple[str, ...]


def command(
    dataset: Path,
    target: Target,
    *,
    kind: str | None = None,
    python: Path = CONTAINER_PYTHON,
    wait: float = OFFLINE_WAIT_SECONDS,
) -> list[str]:
    folder = dataset if dataset.is_dir() else dataset.parent
    return [
        str(python), "-m", "detector.ingest", "--labels", str(dataset), "--images", str(folder),
        *(["--format", kind] if kind else []), "--classes", ",".join(target.classes),
        "--bucket", target.bucket, "--prefix", f"datasets/{folder.name}", "--feature-group", target.group,
        "--ingest-log", ingest_log_uri(target.bucket, target.group), "--wait-offline", str(wait),
    ]  # fmt: skip


def config_classes(ssm: Any, parameter: str | None) -> tuple[str, ...]:
    """The deployed config's classes (its SSM parameter); the repository's config while the stack has none."""
    if parameter:
        try:
            text = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise RolloutError(f"{parameter}: {error.response.get('Error', {}).get('Message', error)}") from error
        else:
            try:
                return tuple(PipelineConfig.from_yaml(text, source=parameter).classes)
            except ConfigError as error:
                raise RolloutError(f"the deployed config is not valid: {error}") from error
    print(f"the stack has no config parameter yet: classes from {CONFIG}")
    return tuple(load_config().classes)


def ingest(
    env: Environment,
    session: boto3.Session,
    dataset: Path,
    *,
    kind: str | None = None,
    python: Path = CONTAINER_PYTHON,
    wait: float = OFFLINE_WAIT_SECONDS,
) -> int:
    """Checks everything it can before it writes anything; returns ingest's exit code (1: some rows refused, 2: the
    export cannot be read, 3: the offline store does not hold every record in time)."""
    dataset = dataset.resolve()
    if not dataset.exists():
        raise RolloutError(f"{dataset}: no such file or folder (DATASET is a label export, or the folder holding it)")
    found = outputs(session.client("cloudformation"), env.stack_name)
    if "FeatureGroupName" not in found or "ArtifactBucketName" not in found:
        raise RolloutError(
            f"{env.stack_name} is not deployed (or predates its feature group): `make deploy ENV={env.name}`"
        )
    group, bucket = found["FeatureGroupName"], found["ArtifactBucketName"]
    classes = config_classes(session.client("ssm"), found.get("ConfigParameterName"))
    try:
        status = session.client("sagemaker").describe_feature_group(FeatureGroupName=group)["FeatureGroupStatus"]
    except ClientError as error:
        raise RolloutError(f"feature group {group}: {error.response.get('Error', {}).get('Message', error)}") from error
    if status != "Created":
        raise RolloutError(f"feature group {group} is {status}, not Created: try again when it is")
    region = str(session.region_name)
    environment = {**os.environ, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "PYTHONPATH": str(CONTAINER)}
    folder = dataset if dataset.is_dir() else dataset.parent
    print(f"ingesting {dataset} into s3://{bucket}/datasets/{folder.name}/ and feature group {group}")
    # our own entry point, with arguments from the stack's outputs and a checked path
    arguments = command(dataset, Target(bucket, group, classes), kind=kind, python=python, wait=wait)
    return subprocess.run(arguments, env=environment, check=False).returncode  # noqa: S603

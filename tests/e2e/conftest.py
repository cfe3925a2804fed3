"""The local stack, driven over HTTP as a user would (local/drive.py, as `make run` drives it), with tiny settings: a
64x64 model, one epoch, a few seconds per step. The stack starts once for the module; every test makes its own runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local import drive
from local.stack import LOCAL_RUNNER_KEY, LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api

TINY_HYPERPARAMETERS = {
    "epochs": 1,
    "batch_size": 4,
    "warmup_epochs": 0,
    "data_width": 64,
    "data_height": 64,
}
IMAGES = 24


def tiny_config(stack: LocalStack, **hyperparameters: Any) -> str:
    name = stack.values["ConfigParameter"]
    config = yaml.safe_load(stack.aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"])
    config["training"].setdefault("hyperparameters", {}).update({**TINY_HYPERPARAMETERS, **hyperparameters})
    # a one-epoch model scores about nothing: the tiny stack's floor lets runs that ask for 0 register it
    config["evaluation"]["map_threshold"] = 0.0
    return yaml.safe_dump(config, sort_keys=False)


def definition(stack: LocalStack) -> dict[str, Any]:
    """The pipeline's definition as SageMaker holds it."""
    described = stack.aws["sagemaker"].describe_pipeline(PipelineName=stack.values["AWS::StackName"])
    return dict(json.loads(described["PipelineDefinition"]))


def default_of(definition: dict[str, Any], parameter: str) -> Any:
    declared = {p["Name"]: p for p in definition["Parameters"]}
    return declared[parameter].get("DefaultValue")


def declared_default(stack: LocalStack, parameter: str) -> Any:
    return default_of(definition(stack), parameter)


def sync_config(stack: LocalStack, text: str, synced: Callable[[dict[str, Any]], bool], *, timeout: float = 30) -> None:
    """Change the config in SSM and wait for the rule -> sync_definition -> UpdatePipeline path to apply it: until
    `synced` holds for the pipeline's definition."""
    stack.client("ssm").put_parameter(Name=stack.values["ConfigParameter"], Value=text, Type="String", Overwrite=True)
    drive.until(
        lambda: definition(stack), synced, timeout=timeout, every=0.5, waited="the definition synced from the config"
    )


def set_config(stack: LocalStack, text: str, *, epochs: int) -> None:
    """Change the config in SSM and wait until the definition declares its epochs."""
    sync_config(stack, text, lambda synced: default_of(synced, "NumEpochs") == epochs)


def start_stack(work: Path, *, persist: bool = False, offline_store_delay: float | None = None) -> LocalStack:
    stack = LocalStack(
        work=work, persist=persist, function_log=work / "functions.log", offline_store_delay=offline_store_delay
    ).start()
    set_config(stack, tiny_config(stack), epochs=1)
    return stack


def ingest(stack: LocalStack, folder: Path) -> None:
    drive.synthesize(folder, count=IMAGES)
    drive.ingest(stack, folder)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work = tmp_path_factory.mktemp("local")
    started = start_stack(work)
    ingest(started, work / "dataset")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def empty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack with no labelled data, for tests of the API itself: the runs it starts end at once."""
    started = start_stack(tmp_path_factory.mktemp("empty"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Api:
    return drive.api(stack.api.url, LOCAL_USER_KEY)


def start_run(api: Api, parameters: dict[str, Any] | None = None, key: str | None = None) -> str:
    """A run started by the runner (local/iam/users.py): `api`'s admin may then approve and deploy its model, as
    model_registry.four_eyes wants another identity to."""
    return str(drive.start_run(drive.api(api.url, LOCAL_RUNNER_KEY), parameters, key=key)["run_id"])

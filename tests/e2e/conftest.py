"""The local stack, driven over HTTP as a user would, with tiny settings: a 64x64 model, one epoch, a few
seconds per step. The stack starts once for the module; every test makes its own runs."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from local import drive
from local.stack import FEATURE_GROUP, LOCAL_RUNNER_KEY, LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api
from sam_stack.container import CONTAINER_BIN, container_environment

TINY_HYPERPARAMETERS = {
    "epochs": 1,
    "batch_size": 4,
    "warmup_epochs": 0,
    "data_shape": {"width": 64, "height": 64},
}
IMAGES = 24


def container(module: str, *args: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(CONTAINER_BIN / "python"), "-m", module, *args],
        env=container_environment(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def tiny_config(stack: LocalStack, **hyperparameters: Any) -> str:
    name = stack.values["ConfigParameter"]
    config = yaml.safe_load(stack.aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"])
    config["training"]["hyperparameters"].update({**TINY_HYPERPARAMETERS, **hyperparameters})
    # a one-epoch model scores about nothing: the tiny stack's floor lets runs that ask for 0 register it
    config["evaluation"]["map_threshold"] = 0.0
    return yaml.safe_dump(config, sort_keys=False)


def declared_default(stack: LocalStack, parameter: str) -> Any:
    described = stack.aws["sagemaker"].describe_pipeline(PipelineName=stack.values["AWS::StackName"])
    declared = {p["Name"]: p for p in __import__("json").loads(described["PipelineDefinition"])["Parameters"]}
    return declared[parameter].get("DefaultValue")


def set_config(stack: LocalStack, text: str, epochs: int, timeout: float = 30) -> None:
    """Change the config in SSM and wait for the rule -> sync_definition -> UpdatePipeline path to apply it."""
    stack.client("ssm").put_parameter(Name=stack.values["ConfigParameter"], Value=text, Type="String", Overwrite=True)
    deadline = time.monotonic() + timeout
    while declared_default(stack, "NumEpochs") != epochs:
        assert time.monotonic() < deadline, "the definition was not synced from the new config"
        time.sleep(0.5)


def start_stack(work: Path, persist: bool = False) -> LocalStack:
    stack = LocalStack(work=work, persist=persist, function_log=work / "functions.log").start()
    set_config(stack, tiny_config(stack), epochs=1)
    return stack


def ingest(stack: LocalStack, folder: Path) -> None:
    container("detector.synth", "--output", str(folder), "--count", str(IMAGES), env=stack.endpoints)
    container(
        "detector.ingest", "--labels", str(folder / "labels.csv"), "--images", str(folder),
        "--bucket", stack.bucket, "--feature-group", FEATURE_GROUP, env=stack.endpoints,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work = tmp_path_factory.mktemp("local")
    started = start_stack(work)
    ingest(started, work / "dataset")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Api:
    return drive.api(stack.api.url, LOCAL_USER_KEY)


def start_run(api: Api, parameters: dict[str, Any] | None = None, key: str | None = None) -> str:
    """A run started by the runner (local/iam/users.py): `api`'s admin may then approve and deploy its model, as
    model_registry.four_eyes wants another identity to."""
    headers = {"Idempotency-Key": key} if key else {}
    runner = drive.api(api.url, LOCAL_RUNNER_KEY)
    status, body = runner.call("POST", "/runs", {"parameters": parameters or {}}, headers=headers)
    assert status == 201, body
    return str(body["run_id"])


def wait_for(api: Api, run_id: str, until: set[str] | None = None, timeout: float = 180) -> dict[str, Any]:
    until = until or {"Succeeded", "Failed", "Stopped"}
    deadline = time.monotonic() + timeout
    while True:
        status, detail = api.call("GET", f"/runs/{run_id}")
        assert status == 200, detail
        if detail["status"] in until:
            return dict(detail)
        assert time.monotonic() < deadline, f"run {run_id} is still {detail['status']}: {detail['steps']}"
        time.sleep(1)

"""A restarted local stack keeps what a user registered, after a graceful stop and after a kill: its own module, so
that no other stack is running."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
import yaml

from local import daemon, drive
from local.drive import endpoint_until, follow
from local.emulator import aws_environment
from local.executor.state import INTERRUPTED
from local.stack import LOCAL_USER_KEY, SAVE_PERIOD, LocalStack
from local.template import local_values
from sam_stack.client import Api
from sam_stack.template import Template
from tests.e2e.conftest import IMAGES, TINY_HYPERPARAMETERS, default_of, ingest, start_run, start_stack


def test_a_restarted_stack_keeps_its_registered_models_and_its_endpoint(tmp_path: Path) -> None:
    # Given a stack that registered, approved and deployed a model, then stopped
    first = start_stack(tmp_path, persist=True)
    try:
        ingest(first, tmp_path / "dataset")
        api = drive.api(first.api.url, LOCAL_USER_KEY)
        run_id = start_run(api, {"MapThreshold": 0.0})
        model = follow(api, run_id)["model"]
        api.call("POST", f"/models/{model['version']}/approve", {"comment": "before the restart"})
        assert api.call("POST", f"/models/{model['version']}/deploy")[0] == 202
        in_service(api)
    finally:
        first.stop()

    # When it starts again
    second = LocalStack(work=tmp_path, persist=True, function_log=tmp_path / "functions.log").start()
    try:
        api = drive.api(second.api.url, LOCAL_USER_KEY)
        status, models = api.call("GET", "/models")
        _, run = api.call("GET", f"/runs/{run_id}")
        # the endpoint comes back, serving the same version (`make up` after `make down`)
        endpoint = in_service(api)
    finally:
        second.stop()

    # Then the model is there, still approved, and so is the run that made it
    assert status == 200
    assert [(m["version"], m["approval_status"]) for m in models["models"]] == [(1, "Approved")]
    assert run["status"] == "Succeeded"
    assert run["model"]["version"] == 1
    assert endpoint["version"] == 1


def in_service(api: Api) -> dict[str, Any]:
    return endpoint_until(api, lambda state: state["status"] == "InService")


def test_a_killed_stack_comes_back_with_what_it_saved_and_its_run_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the stack started as `make up` starts it (a process of its own), with a config change, data in its
    # bucket, a model registered by a run and approved through the API, and one registered with boto3 with no
    # metadata and approved in SageMaker directly; and a second run in the middle of its training
    work, port = tmp_path / "work", free_port()
    values = Template.load().values(local_values())
    assert daemon.up(port, work=work) == 0
    try:
        made = make_state(work, tmp_path / "dataset", values)
        subjects, before, second, bare = made["subjects"], made["before"], made["second"], made["bare"]

        # When the stack is killed (no graceful stop) a few seconds later, and started again as `make up` does
        time.sleep(2 * SAVE_PERIOD + 1)
        jobs = [int(pid) for pid_file in (work / "jobs").glob("*/pid") for pid in pid_file.read_text().split()]
        kill(running(work)["pid"])
        capsys.readouterr()
        assert daemon.up(port, work=work) == 0
        printed = capsys.readouterr().out
        api = drive.api(running(work)["api"], LOCAL_USER_KEY)
        after = recorded(api, subjects)
        run = api.call("GET", f"/runs/{second}")[1]
        config = api.call("GET", "/config")[1]
        aws = clients(running(work)["endpoints"])
        kept = aws["s3"].get_object(Bucket=values["ArtifactBucket"], Key="notes/kept.txt")["Body"].read()

        # Then nothing was left out, and the registry, the decisions, the audit trail, the config and the bucket are
        # back; the run that was training shows Stopped with the reason
        assert "not restored" not in printed
        # the training job the dead stack left running was stopped by `up`
        assert jobs
        assert all(gone(pid) for pid in jobs)
        assert after == before
        approvals = sorted((m["version"], m["approval_status"]) for m in after["models"])
        assert approvals == [(1, "Approved"), (2, "Approved")]
        assert [d["comment"] for d in after[f"model#{group(values)}/1"]["decisions"]] == ["before the kill"]
        assert config["config"]["training"]["hyperparameters"]["epochs"] == 1
        assert kept == b"kept"
        assert (run["status"], run["failure_reason"]) == ("Stopped", INTERRUPTED)
        assert next(s for s in run["steps"] if s["name"] == "Train")["status"] == "Stopped"

        # And the package registered with no metadata survives `make down` and `make up` too
        assert daemon.down(work=work) == 0
        assert daemon.up(port, work=work) == 0
        assert "not restored" not in capsys.readouterr().out
        aws = clients(running(work)["endpoints"])
        described = aws["sagemaker"].describe_model_package(ModelPackageName=bare)
        assert described["ModelApprovalStatus"] == "Approved"
        assert "CustomerMetadataProperties" not in described
    finally:
        daemon.down(work=work)


def make_state(work: Path, dataset: Path, values: dict[str, str]) -> dict[str, Any]:
    """The config changed, data ingested, a run's model approved through the API, an object put, a package registered
    with boto3 (no metadata) and approved in SageMaker directly; then a second run left training. What the API showed
    before the second run, the runs and the bare package's ARN."""
    endpoints = running(work)["endpoints"]
    aws = clients(endpoints)
    configure(aws, values)
    drive.synthesize(dataset, count=IMAGES)
    ingest_into(endpoints, values, dataset)
    api = drive.api(running(work)["api"], LOCAL_USER_KEY)
    first = start_run(api, {"MapThreshold": 0.0})
    model = follow(api, first)["model"]
    assert api.call("POST", f"/models/{model['version']}/approve", {"comment": "before the kill"})[0] == 200
    aws["s3"].put_object(Bucket=values["ArtifactBucket"], Key="notes/kept.txt", Body=b"kept")
    bare = register_bare(aws["sagemaker"], group(values))
    aws["sagemaker"].update_model_package(ModelPackageArn=bare, ModelApprovalStatus="Approved")
    drive.until(
        lambda: api.call("GET", "/models/2")[1],
        lambda m: bool(m["decisions"]),
        timeout=30,
        every=0.5,
        waited="the outside approval recorded",
    )
    subjects = [f"run#{first}", f"model#{group(values)}/1", f"model#{group(values)}/2"]
    before = recorded(api, subjects)
    second = start_run(api, {"NumEpochs": 500, "MapThreshold": 0.0})
    drive.until(
        lambda: api.call("GET", f"/runs/{second}")[1], training, timeout=120, every=0.5, waited="the run's training"
    )
    return {"subjects": subjects, "before": before, "second": second, "bare": bare}


def recorded(api: Api, subjects: list[str]) -> dict[str, Any]:
    """The registry (without creation times: a restore registers the packages again), the decisions and the audit
    trail of `subjects`."""
    models = [{k: v for k, v in m.items() if k != "created"} for m in api.call("GET", "/models")[1]["models"]]
    found: dict[str, Any] = {"models": models}
    for subject in subjects:
        found[subject] = {"audit": api.call("GET", f"/audit?subject={quote(subject)}&limit=100")[1]["entries"]}
        if subject.startswith("model#"):
            found[subject]["decisions"] = api.call("GET", f"/models/{subject.rsplit('/', 1)[1]}")[1]["decisions"]
    return found


def running(work: Path) -> dict[str, Any]:
    return dict(json.loads((work / "stack.json").read_text()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clients(endpoints: dict[str, str]) -> dict[str, Any]:
    """boto3 as a user points it at the stack: the endpoints `make up` prints, the admin's key."""
    session = boto3.Session(
        aws_access_key_id=LOCAL_USER_KEY, aws_secret_access_key="local-secret", region_name="us-east-1"
    )
    urls = {"s3": endpoints["AWS_ENDPOINT_URL"], "ssm": endpoints["AWS_ENDPOINT_URL_SSM"]}
    urls["sagemaker"] = endpoints["AWS_ENDPOINT_URL_SAGEMAKER"]
    return {name: session.client(name, endpoint_url=url) for name, url in urls.items()}  # type: ignore[call-overload]


def configure(aws: dict[str, Any], values: dict[str, str]) -> None:
    """The tiny config (tests/e2e/conftest.py), through SSM, and the definition synced from it."""
    name = values["ConfigParameter"]
    config = yaml.safe_load(aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"])
    config["training"].setdefault("hyperparameters", {}).update(TINY_HYPERPARAMETERS)
    config["evaluation"]["map_threshold"] = 0.0
    aws["ssm"].put_parameter(Name=name, Value=yaml.safe_dump(config, sort_keys=False), Type="String", Overwrite=True)
    drive.until(
        lambda: json.loads(
            aws["sagemaker"].describe_pipeline(PipelineName=values["AWS::StackName"])["PipelineDefinition"]
        ),
        lambda synced: default_of(synced, "NumEpochs") == 1,
        timeout=30,
        every=0.5,
        waited="the definition synced from the config",
    )


def ingest_into(endpoints: dict[str, str], values: dict[str, str], dataset: Path) -> None:
    # waiting until the offline store holds it all (it lags, as AWS's does)
    arguments = drive.ingest_arguments(dataset, bucket=values["ArtifactBucket"])
    # as the labelling team's tooling reaches the stack: its endpoints, throwaway credentials (local/emulator.py)
    drive.container("detector.ingest", *arguments, env={**aws_environment(endpoints["AWS_ENDPOINT_URL"]), **endpoints})


def group(values: dict[str, str]) -> str:
    template = Template.load()
    return str(template.resolve(template.resource("ModelPackageGroup")["Properties"]["ModelPackageGroupName"], values))


def register_bare(sagemaker: Any, group_name: str) -> str:
    """A package as the AWS CLI registers one: an inference specification, no metadata."""
    created = sagemaker.create_model_package(
        ModelPackageGroupName=group_name,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/detector:outside"}],
            "SupportedContentTypes": ["application/x-image"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )
    return str(created["ModelPackageArn"])


def training(run: dict[str, Any]) -> bool:
    return any(s["name"] == "Train" and s["status"] == "Executing" for s in run["steps"])


def kill(pid: int) -> None:
    """SIGKILL, as a crash or `kill -9`: the stack saves nothing more. It is this process's child (`up` started it
    here, not from a shell that has exited), so it is reaped here too."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def gone(pid: int) -> bool:
    """Dead, or a zombie waiting for whoever inherited it to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().rsplit(") ", 1)[1].startswith("Z")

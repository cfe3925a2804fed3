"""Deleting the stack's pipeline while a run of it is executing, as CloudFormation's delete of the PipelineDefinition
custom resource does: its own module (so its own stack, conftest's module fixture), since the pipeline is gone
afterwards."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import drive
from local.stack import LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run

EVENTS = Path(__file__).resolve().parents[2] / "events"


def training(api: Api) -> str:
    """A run whose Train step is executing (long enough to be stopped there)."""
    run_id = start_run(api, {"NumEpochs": 500, "MapThreshold": 0.0})

    def read() -> dict[str, Any]:
        return dict(api.call("GET", f"/runs/{run_id}")[1])

    drive.until(
        read,
        lambda d: any(s["name"] == "Train" and s["status"] == "Executing" for s in d["steps"]),
        timeout=120,
        every=0.5,
        waited=f"run {run_id} training",
    )
    return run_id


def delete_event(stack: LocalStack) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / "sync_definition" / "deploy_delete.json").read_text()))
    event["ResponseURL"] = f"{stack.slack.url}cfn/delete"
    event["PhysicalResourceId"] = stack.values["AWS::StackName"]
    return event


def test_sagemaker_refuses_to_delete_a_pipeline_while_a_run_of_it_is_executing(stack: LocalStack, api: Api) -> None:
    run_id = training(api)
    sagemaker = stack.client("sagemaker")

    with pytest.raises(ClientError) as refused:
        sagemaker.delete_pipeline(PipelineName=stack.values["AWS::StackName"], ClientRequestToken="t" * 32)

    assert refused.value.response["Error"]["Code"] == "ConflictException"
    assert run_id in refused.value.response["Error"]["Message"]
    assert sagemaker.describe_pipeline(PipelineName=stack.values["AWS::StackName"])["PipelineName"]
    api.call("POST", f"/runs/{run_id}/stop")
    drive.follow(api, run_id, until_status={"Stopped", "Failed", "Succeeded"}, timeout=60)


def test_deleting_the_stack_stops_the_pipelines_runs_waits_for_them_and_deletes_it(stack: LocalStack, api: Api) -> None:
    # Given a run in training (SageMaker would refuse the deletion until it has stopped)
    run_id = training(api)

    # When CloudFormation deletes the custom resource
    outcome = stack.functions.invoke("SyncDefinitionFunction", delete_event(stack))

    # Then the run was stopped and had stopped before the pipeline went, and CloudFormation heard SUCCESS
    assert outcome == {"action": "delete", "pipeline": stack.values["AWS::StackName"]}
    [answer] = stack.slack.posts("/cfn/delete")
    assert answer.body["Status"] == "SUCCESS", answer.body
    [execution] = [e for e in stack.executor.executions.values() if e.arn.endswith(run_id)]
    assert execution.status == "Stopped"
    assert stack.client("sagemaker").list_pipelines()["PipelineSummaries"] == []

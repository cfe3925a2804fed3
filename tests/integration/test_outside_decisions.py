"""Approvals and rejections made in SageMaker directly, against the control plane's own: notify, auto_deploy and the
API in-process against moto, driven by the package's state-change event as SageMaker sends it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest

from local.webhooks import WebhookRecorder
from tests.integration.conftest import LambdaContext, Stack, configure_slack, event
from tests.integration.test_api import register_model

Load = Callable[[str, str], ModuleType]
EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdef123456"
# the local registry names the caller as SageMaker does: the IAM identity that signed UpdateModelPackage
CALLER = "arn:aws:iam::123456789012:user/"


def package_arn(stack: Stack, version: int = 1) -> str:
    return f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{stack.values['AWS::StackName']}/{version}"


def epoch_milliseconds(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def state_change(stack: Stack, folder: str, name: str, version: int = 1) -> dict[str, Any]:
    """The sample event, its detail the package as it is now (SageMaker's detail is DescribeModelPackage's output,
    times in epoch milliseconds)."""
    sample = event(folder, name)
    described = stack.aws["sagemaker"].describe_model_package(ModelPackageName=package_arn(stack, version))
    described.pop("ResponseMetadata")
    now = json.loads(
        json.dumps(described, default=lambda t: int(t.timestamp() * 1000) if isinstance(t, datetime) else t)
    )
    return {**sample, "detail": {**sample["detail"], **now}}


def approve_in_sagemaker(stack: Stack, description: str = "") -> None:
    """What anyone with sagemaker:UpdateModelPackage can do in the console, Studio or the CLI."""
    stack.aws["sagemaker"].update_model_package(
        ModelPackageArn=package_arn(stack), ModelApprovalStatus="Approved", ApprovalDescription=description
    )


def api_call(load_function: Load, name: str) -> tuple[int, Any]:
    api = load_function("api", "ApiFunction")
    response = api.lambda_handler(event("api", name), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def caller(stack: Stack) -> str:
    """Who SageMaker says last changed the package (the tests' access key names an IAM user here)."""
    described = stack.aws["sagemaker"].describe_model_package(ModelPackageName=package_arn(stack))
    found = str(described["LastModifiedBy"]["IamIdentity"]["Arn"])
    assert found.startswith(CALLER)
    return found


def decisions(stack: Stack) -> list[tuple[str, str, str]]:
    entries = sorted(stack.audit(), key=lambda a: a["at"]["S"])
    return [(a["action"]["S"], a["source"]["S"], a["actor"]["S"]) for a in entries]


def test_an_approval_made_in_sagemaker_is_audited_and_announced_once(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a registered model approved in SageMaker directly, its description imitating the control plane's
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    approve_in_sagemaker(stack, "Approved by arn:aws:iam::123456789012:user/alice via api: good")
    notify = load_function("notify", "NotifyFunction")
    change = state_change(stack, "notify", "model_approved")

    # When its event arrives twice (EventBridge delivers at least once)
    first = notify.lambda_handler(change, LambdaContext())
    again = notify.lambda_handler(change, LambdaContext())

    # Then it is recorded once, as made outside the control plane by the caller SageMaker names
    assert (first["outside"], first["recorded"], again["recorded"]) == (True, True, False)
    assert decisions(stack) == [("approve", "outside", caller(stack))]
    [entry] = stack.audit()
    assert entry["subject"]["S"] == f"model#{stack.values['AWS::StackName']}/1"
    assert entry["details"]["M"]["to"]["S"] == "Approved"
    # And announced once in the approvers' channel: the version, the status, who, from where, not deployed
    [post] = slack.posts("/api/chat.postMessage")
    assert post.body["channel"] == "C0SCRATCHES"
    text = post.body["text"]
    assert "scratch-detector v1 was Approved outside the control plane" in text
    assert caller(stack) in text
    assert "not deployed automatically" in text
    assert "alice via api" in json.dumps(post.body["blocks"])  # what they wrote is shown, not believed


def test_a_rejection_made_in_studio_names_the_studio_user(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a rejection whose event names a Studio user profile and the role it ran as
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    stack.aws["sagemaker"].update_model_package(ModelPackageArn=package_arn(stack), ModelApprovalStatus="Rejected")
    change = state_change(stack, "notify", "model_rejected")
    change["detail"]["LastModifiedBy"] = event("notify", "model_rejected")["detail"]["LastModifiedBy"]

    outcome = load_function("notify", "NotifyFunction").lambda_handler(change, LambdaContext())

    # Then the record and the message name both
    assert outcome["outside"] is True
    who = "arn:aws:sts::123456789012:assumed-role/AmazonSageMaker-ExecutionRole/SageMaker (Studio user dana)"
    assert decisions(stack) == [("reject", "outside", who)]
    [post] = slack.posts("/api/chat.postMessage")
    assert f"v1 was Rejected outside the control plane, in SageMaker directly, by {who}" in post.body["text"]
    assert "deployed" not in post.body["text"]


def test_the_control_planes_own_decision_is_not_announced_or_recorded_again(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a model approved through the API
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    assert api_call(load_function, "approve_model")[0] == 200
    notify = load_function("notify", "NotifyFunction")

    # When the approval's event arrives, twice
    change = state_change(stack, "notify", "model_approved")
    outcomes = [notify.lambda_handler(change, LambdaContext()) for _ in range(2)]

    # Then nothing is announced, and the API's record is the only one
    assert outcomes == [{"posted": False, "outside": False}] * 2
    assert slack.posts("/api/chat.postMessage") == []
    assert decisions(stack) == [("approve", "api", "arn:aws:iam::123456789012:user/alice")]


def test_an_event_that_arrives_before_the_api_has_answered_is_still_the_control_planes(
    stack: Stack, slack: WebhookRecorder, load_function: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API whose approval's event reaches notify the moment SageMaker has changed the package
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    api, notify = load_function("api", "ApiFunction"), load_function("notify", "NotifyFunction")
    update, outcomes = api.REGISTRY.set_approval, []

    def update_then_deliver(arn: str, status: str, description: str) -> None:
        update(arn, status, description)
        outcomes.append(notify.lambda_handler(state_change(stack, "notify", "model_approved"), LambdaContext()))

    monkeypatch.setattr(api.REGISTRY, "set_approval", update_then_deliver)

    # When the model is approved through the API
    response = api.lambda_handler(event("api", "approve_model"), LambdaContext())

    # Then the event found the API's record: nothing announced, nothing recorded but the API's decision
    assert response["statusCode"] == 200
    assert outcomes == [{"posted": False, "outside": False}]
    assert slack.posts("/api/chat.postMessage") == []
    assert [d[:2] for d in decisions(stack)] == [("approve", "api")]


def test_a_rejection_in_sagemaker_after_the_control_planes_approval_is_outside(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a model approved through the API, then rejected in SageMaker directly
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    assert api_call(load_function, "approve_model")[0] == 200
    stack.aws["sagemaker"].update_model_package(ModelPackageArn=package_arn(stack), ModelApprovalStatus="Rejected")

    outcome = load_function("notify", "NotifyFunction").lambda_handler(
        state_change(stack, "notify", "model_rejected"), LambdaContext()
    )

    # Then the rejection is the outside one: the API's approval explains no rejection
    assert outcome["outside"] is True
    assert [d[:2] for d in decisions(stack)] == [("approve", "api"), ("reject", "outside")]


def test_an_approval_made_in_sagemaker_is_not_deployed_on_approval(stack: Stack, load_function: Load) -> None:
    # Given deployment.on_approval, and a model approved in SageMaker directly (its description forged)
    register_model(stack, 0.73, EXECUTION)
    approve_in_sagemaker(stack, "Approved by arn:aws:iam::123456789012:user/alice via api: good")
    name = stack.values["ConfigParameter"]
    text = stack.aws["ssm"].get_parameter(Name=name)["Parameter"]["Value"]
    stack.aws["ssm"].put_parameter(
        Name=name, Value=text.replace("on_approval: false", "on_approval: true"), Type="String", Overwrite=True
    )

    outcome = load_function("auto_deploy", "AutoDeployFunction").lambda_handler(
        state_change(stack, "auto_deploy", "approved_outside"), LambdaContext()
    )

    # Then nothing is deployed
    assert outcome == {"deployed": False, "reason": "approved outside the control plane"}
    assert stack.aws["sagemaker"].list_endpoint_configs()["EndpointConfigs"] == []
    assert [e for e in stack.audit() if e["action"]["S"] == "deploy"] == []


def test_get_model_shows_the_outside_decision(stack: Stack, slack: WebhookRecorder, load_function: Load) -> None:
    # Given an approval made in SageMaker directly, which notify recorded (and the model's archive in S3)
    configure_slack(stack)
    register_model(stack, 0.73, EXECUTION)
    described = stack.aws["sagemaker"].describe_model_package(ModelPackageName=package_arn(stack))
    bucket, key = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"][5:].split("/", 1)
    stack.aws["s3"].put_object(Bucket=bucket, Key=key, Body=b"archive")
    approve_in_sagemaker(stack, "looked fine to me")
    load_function("notify", "NotifyFunction").lambda_handler(
        state_change(stack, "notify", "model_approved"), LambdaContext()
    )

    # When the model is asked for
    status, body = api_call(load_function, "get_model")

    # Then its decisions show the approval, made outside, by whom, with what they wrote
    assert (status, body["approval_status"]) == (200, "Approved")
    [decision] = body["decisions"]
    assert (decision["decision"], decision["source"], decision["actor"]) == ("approve", "outside", caller(stack))
    assert decision["comment"] == "looked fine to me"

"""The local stack's IAM check against moto: each call authorised against the caller's role, refused as AWS does."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from control_plane.aws import clients
from local.dispatch import Dispatcher
from local.functions import Functions
from local.iam import enforce, roles
from local.iam.check import Identity
from local.iam.process import DENIALS_ENV, IDENTITY_ENV
from sam_stack.container import CONTAINER_BIN, job_pythonpath
from tests.integration.conftest import Stack

BUCKET_ARN = "arn:aws:s3:::scratch-detector-123456789012"


def role(*statements: dict[str, Any]) -> Identity:
    return Identity("TestRole", "arn:aws:iam::123456789012:role/test-role", tuple(statements))


READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/*"}
LIST = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET_ARN}


def error_of(call: Any, **params: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return raised.value.response["ResponseMetadata"]["HTTPStatusCode"], raised.value.response["Error"]["Code"]


@pytest.mark.parametrize(
    ("statements", "expected_get", "expected_head"),
    [((READ,), (403, "AccessDenied"), (403, "403")), ((READ, LIST), (404, "NoSuchKey"), (404, "404"))],
)
def test_a_missing_object_is_a_403_to_a_role_that_may_not_list_the_bucket(
    stack: Stack, statements: tuple[dict[str, Any], ...], expected_get: tuple[int, str], expected_head: tuple[int, str]
) -> None:
    # Given a role that may read the bucket's objects (and, in the second case, list it)
    s3, bucket = clients.client("s3"), stack.values["ArtifactBucket"]
    with enforce.acting_as(role(*statements)):
        # When it reads a key that does not exist, Then S3 says "not found" only to a role that may list
        assert error_of(s3.get_object, Bucket=bucket, Key="pipeline/none.json") == expected_get
        assert error_of(s3.head_object, Bucket=bucket, Key="pipeline/none.json") == expected_head
    assert enforce.take() == []  # a missing object is S3's answer, not a denial of the request


def test_a_request_the_role_does_not_allow_is_refused_named_and_recorded(stack: Stack) -> None:
    sagemaker = clients.client("sagemaker")
    with enforce.acting_as(role(READ)), pytest.raises(ClientError) as raised:
        sagemaker.describe_model_package_group(ModelPackageGroupName=stack.values["AWS::StackName"])
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/test-role/TestRole is not authorized to perform: "
        "sagemaker:DescribeModelPackageGroup on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/scratch-detector "
        "because no identity-based policy allows the sagemaker:DescribeModelPackageGroup action"
    )
    # And the denial is recorded: a test whose code swallowed it fails anyway
    [denied] = enforce.take()
    assert denied.request.action == "sagemaker:DescribeModelPackageGroup"


def test_without_an_acting_identity_the_call_is_the_services_own(stack: Stack) -> None:
    clients.client("sagemaker").describe_model_package_group(ModelPackageGroupName=stack.values["AWS::StackName"])
    assert enforce.take() == []


def test_a_roles_boundary_caps_what_its_own_policy_allows(stack: Stack) -> None:
    # Given a role whose policy allows everything, under the stack's permissions boundary (as CI deploys it)
    [boundary] = roles.boundaries().values()
    capped = Identity(
        "TestRole",
        "arn:aws:iam::123456789012:role/test-role",
        ({"Effect": "Allow", "Action": "*", "Resource": "*"},),
        boundary,
    )
    # When it reads the stack's registry, Then the boundary allows it
    with enforce.acting_as(capped):
        clients.client("sagemaker").describe_model_package_group(ModelPackageGroupName=stack.values["AWS::StackName"])
        # When it writes the config parameter (no role of the stack may), Then the boundary refuses it
        with pytest.raises(ClientError) as raised:
            clients.client("ssm").put_parameter(
                Name=stack.values["ConfigParameter"], Value="x", Type="String", Overwrite=True
            )
    assert (
        "because no permissions boundary allows the ssm:PutParameter action"
        in raised.value.response["Error"]["Message"]
    )
    assert [d.request.action for d in enforce.take()] == ["ssm:PutParameter"]


def test_every_role_of_the_local_stack_runs_under_the_boundary() -> None:
    assert all(identity.boundary for identity in roles.identities().values())


def test_a_job_process_acts_as_its_role_and_its_denials_reach_the_test(stack: Stack, tmp_path: Path) -> None:
    # Given a job process of container/.venv given a role that may read the bucket's objects but not list it
    identity = tmp_path / "identity.json"
    identity.write_text(json.dumps(role(READ).to_json()))
    denials = tmp_path / "denials.jsonl"
    bucket = stack.values["ArtifactBucket"]
    script = (
        "import boto3, botocore\n"
        "s3 = boto3.client('s3')\n"
        f"try: s3.head_object(Bucket='{bucket}', Key='missing')\n"
        "except botocore.exceptions.ClientError as e: print('head', e.response['Error']['Code'])\n"
        f"try: s3.list_objects_v2(Bucket='{bucket}')\n"
        "except botocore.exceptions.ClientError as e: print('list', e.response['Error']['Code'])\n"
    )
    env = {**os.environ, "PYTHONPATH": job_pythonpath(), IDENTITY_ENV: str(identity), DENIALS_ENV: str(denials)}

    # When it reads a missing key and lists the bucket (and swallows both errors)
    done = subprocess.run([str(CONTAINER_BIN / "python"), "-c", script], env=env, capture_output=True, text=True)

    # Then S3 answers the missing key with a 403, the listing is refused, and the denial comes back to the test
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["head 403", "list AccessDenied"]
    enforce.record_denials(denials.read_text().splitlines())
    [denied] = enforce.take()
    assert (denied.request.action, denied.request.resource) == ("s3:ListBucket", BUCKET_ARN)


@pytest.mark.parametrize(
    "function", ["NotifyFunction", "AutoDeployFunction", "ScheduledStartFunction", "SyncDefinitionFunction"]
)
def test_lambda_sends_a_failed_event_to_the_dead_letter_queue_as_the_function(stack: Stack, function: str) -> None:
    # Given a function whose asynchronous event failed its last attempt
    dispatcher = Dispatcher(
        stack.template, Functions(stack.template), events=stack.aws["events"], sqs=stack.aws["sqs"], overrides={}
    )
    event = {"detail-type": "Scheduled Event", "detail": {}}

    # When Lambda gives up, Then the event is in the queue, sent with the function's role (SAM's DLQ statement)
    dispatcher.dead_letter(function, event, attempt=3)

    url = stack.aws["sqs"].get_queue_url(QueueName=stack.values["DeadLetterQueue.QueueName"])["QueueUrl"]
    [message] = stack.aws["sqs"].receive_message(QueueUrl=url)["Messages"]
    assert json.loads(message["Body"]) == event

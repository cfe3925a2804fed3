"""The local API authorises each IAM-signed request as API Gateway does: every local user (local/iam/users.py) gets
API Gateway's 403 on exactly the routes its duty policies leave out, before any function runs, and reaches the
function on the others; an unsigned request or an unknown key is refused; the Slack route stays open.

Over loopback with the template's routes, signed as an SDK signs; a recorder stands in for the functions (whether a
function runs is what authorisation decides, not what it answers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local import drive
from local.api import ApiServer, Route, routes
from local.iam import users
from sam_stack.client import Api, send
from sam_stack.template import Template
from tests.unit.test_duties import expected_routes, sample_path


class Recorder:
    """Runs no function: records the invocations API Gateway would make, and answers 200."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.calls.append((name, event))
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def server(recorder: Recorder) -> Iterator[ApiServer]:
    started = ApiServer(Template.load(), recorder).start()
    yield started
    started.stop()


def iam_routes() -> list[Route]:
    return [route for route in routes(Template.load()) if not route.open]


def call(api: Api, route: Route) -> tuple[int, Any]:
    body = {"comment": "looks right"} if route.method == "POST" else None
    return api.call(route.method, sample_path(route.resource), body)


@pytest.mark.parametrize("user", list(users.USERS.values()), ids=lambda user: user.name)
def test_each_local_user_is_refused_exactly_the_routes_its_duties_leave_out(
    server: ApiServer, recorder: Recorder, user: users.LocalUser
) -> None:
    # Given the user's duties and every IAM-authorised route of the template
    allowed = set().union(*(expected_routes(policy) for policy in user.policies))
    api = drive.api(server.url, user.access_key)
    assert len(iam_routes()) >= 13
    for route in iam_routes():
        path = sample_path(route.resource)
        before = len(recorder.calls)
        # When the user calls the route
        status, body = call(api, route)

        if (route.method, route.resource) in allowed:
            # Then the function runs, told who called
            assert status != 403, (user.name, route.method, path, body)
            (_, event) = recorder.calls[before]
            assert event["requestContext"]["identity"]["userArn"] == user.arn
            assert (event["httpMethod"], event["path"]) == (route.method, path)
        else:
            # Then API Gateway refuses it, naming the caller and the method's ARN, and no function runs
            arn = f"arn:aws:execute-api:us-east-1:123456789012:local00api/dev/{route.method}{path}"
            message = f"User: {user.arn} is not authorized to perform: execute-api:Invoke on resource: {arn}"
            assert (status, body) == (403, {"error": {"code": "ACCESS_DENIED", "message": message}}), route
            assert len(recorder.calls) == before


def test_an_unsigned_request_to_an_iam_route_is_refused(server: ApiServer, recorder: Recorder) -> None:
    before = len(recorder.calls)
    status, body = send("GET", f"{server.url}/runs", headers={}, data=b"")
    assert (status, body) == (
        403,
        {"error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}},
    )
    assert len(recorder.calls) == before


def test_a_key_of_no_local_user_is_refused(server: ApiServer, recorder: Recorder) -> None:
    before = len(recorder.calls)
    status, body = drive.api(server.url, "LOCALSTRANGER").call("GET", "/runs")
    assert status == 403
    assert body["error"]["message"] == "The security token included in the request is invalid."
    assert len(recorder.calls) == before


def test_the_slack_route_takes_unsigned_requests(server: ApiServer, recorder: Recorder) -> None:
    # Slack signs its clicks itself; the function checks that signature, API Gateway checks nothing
    before = len(recorder.calls)
    status, _ = send(
        "POST",
        f"{server.url}/slack/actions",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        data=b"payload=%7B%7D",
    )
    assert status == 200
    [(function, event)] = recorder.calls[before:]
    assert function == "SlackActionsFunction"
    assert "userArn" not in event["requestContext"]["identity"]


def test_only_the_slack_route_and_the_document_are_open(server: ApiServer) -> None:
    # the local API follows each route's Auth in template.yaml, as API Gateway does
    assert {(route.method, route.resource) for route in server.routes if route.open} == {
        ("POST", "/slack/actions"),
        ("GET", "/openapi.json"),
    }


def test_the_document_takes_unsigned_requests_and_names_no_caller(server: ApiServer, recorder: Recorder) -> None:
    # a browser or a client generator reads the OpenAPI document without signing: it holds no secret
    before = len(recorder.calls)
    status, _ = send("GET", f"{server.url}/openapi.json", headers={}, data=b"")
    assert status == 200
    (name, event) = recorder.calls[before]
    assert (name, event["resource"]) == ("ApiFunction", "/openapi.json")
    assert "userArn" not in event["requestContext"]["identity"]

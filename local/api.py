"""template.yaml's REST API on 127.0.0.1: each request becomes the API Gateway proxy event its route's
function receives in AWS, and the function's answer becomes the response.

Routes with AWS_IAM authorisation (the default) are authorised as API Gateway authorises them (local/gateway.py):
the local user whose access key signed the request must be allowed execute-api:Invoke on its method and path by
the template's duty policies, else API Gateway's 403 answers before the function runs. Routes with
`Auth: {Authorizer: NONE}` (the Slack route, which Slack signs, and the OpenAPI document) take any request.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from local.gateway import MISSING_TOKEN, Refusal, Stage, authorise, gateway_response
from local.loopback import Loopback, Served
from local.template import ACCOUNT
from sam_stack.template import Template

LOG = logging.getLogger("local.api")


class Invoker(Protocol):
    """What runs the routes' functions (local/functions.py's Functions)."""

    def invoke(self, name: str, event: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    pattern: re.Pattern[str]
    function: str
    open: bool


def routes(template: Template) -> list[Route]:
    default_open = template.resource("RestApi")["Properties"].get("Auth", {}).get("DefaultAuthorizer") is None
    found = []
    for name, resource in template.of_type("AWS::Serverless::Function").items():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "Api":
                continue
            path, method = event["Properties"]["Path"], event["Properties"]["Method"].upper()
            regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
            auth = event["Properties"].get("Auth", {}).get("Authorizer")
            found.append(Route(method, path, re.compile(regex), name, auth == "NONE" or default_open))
    return found


@cache
def template_stage() -> Stage:
    return Stage.of(Template.load())


def proxy_event(
    route: Route,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes,
    caller: str | None,
    stage: Stage | None = None,
) -> dict[str, Any]:
    stage = stage or template_stage()
    parts = urlsplit(url)
    match = route.pattern.match(parts.path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) or None
    # API Gateway passes a body whose type is not a binary media type as text; bytes that are not UTF-8 cannot be
    # carried in the event's JSON, and reach the function as U+FFFD (which must then refuse it with a 4xx)
    text = body.decode("utf-8", errors="replace") if body else None
    identity = {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")}
    if caller:
        identity |= {"userArn": caller, "caller": caller.rsplit("/", 1)[-1], "accountId": ACCOUNT}
    return {
        "resource": route.resource,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": match.groupdict() if match and match.groupdict() else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": stage.api_id,
            "stage": stage.name,
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": f"/{stage.name}{parts.path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": identity,
        },
        "body": text,
        "isBase64Encoded": False,
    }


class ApiServer(Served):
    def __init__(
        self,
        template: Template,
        functions: Invoker,
        *,
        port: int = 0,
        local_routes: dict[str, Callable[[], Any]] | None = None,
    ) -> None:
        self.template = template
        self.routes = routes(template)
        self.stage = Stage.of(template)
        self.functions = functions
        # the stack's own GET pages under /_local/ (health, what Slack was sent); not part of the product's API
        self.local_routes = {"/_local/health": lambda: {"ok": True}, **(local_routes or {})}
        self.loopback = Loopback(self.answer, port, "api")

    @property
    def url(self) -> str:
        return self.endpoint

    def answer(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(url).path
        if method == "GET" and path in self.local_routes:
            data = json.dumps(self.local_routes[path](), default=str).encode()
            return 200, {"Content-Type": "application/json"}, data
        route = next((r for r in self.routes if r.method == method and r.pattern.match(path)), None)
        if route is None:  # API Gateway's answer to a method and path it does not have
            return gateway_response(self.template, MISSING_TOKEN)
        caller = None
        if not route.open:
            verdict = authorise(self.stage, method, path, authorization=headers.get("Authorization", ""))
            if isinstance(verdict, Refusal):
                return gateway_response(self.template, verdict)
            caller = verdict.arn
        event = proxy_event(route, method, url, headers=headers, body=body, caller=caller, stage=self.stage)
        try:
            result = self.functions.invoke(route.function, event)
        except Exception:  # what API Gateway answers when the function fails
            LOG.exception("function failed", extra={"function": route.function})
            return 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'

        answer = result.get("body") or ""
        data = base64.b64decode(answer) if result.get("isBase64Encoded") else answer.encode()
        response_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            response_headers[name] = ", ".join(str(v) for v in values)
        return int(result.get("statusCode", 200)), response_headers, data

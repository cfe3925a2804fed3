"""The REST resolver every HTTP function uses, with every error mapped to one JSON shape in one place:
{"error": {"code": ..., "message": ...}}, 4xx for what the caller can fix."""

from __future__ import annotations

from collections.abc import Mapping
from email.message import Message
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel

from control_plane.errors import ControlPlaneError, Unauthorized
from control_plane.models import ErrorBody, ErrorDetail
from control_plane.observability import logger

ERROR_MEANINGS = {
    400: "a field, parameter or body is invalid; the message names it",
    401: "no authenticated identity, or a bad Slack signature",
    403: "not allowed (Slack user not on the allow-list, Slack not configured)",
    404: "no such run, model version or route",
    409: "the run is not in a state that allows this, or a request with this Idempotency-Key is in progress",
    415: "the body is not JSON (Content-Type must be application/json)",
    422: "the Idempotency-Key was used with another body",
    429: "AWS throttled the request or an account quota is used up; the message names it",
}


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses for the error statuses a route can give, all in the one error shape."""
    return {
        status: {"description": ERROR_MEANINGS[status], "content": {"application/json": {"model": ErrorBody}}}
        for status in statuses
    }


def answers(model: type[BaseModel], *errors_: int, status: int = 200, description: str = "done") -> dict[int, Any]:
    """A route's OpenAPI responses: its success with the model it returns, then its errors, so that a client
    generated from the document is typed."""
    success: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": model}}}
    return {status: success, **errors(*errors_)}


def error_response(status: int, code: str, message: str) -> Response[str]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump_json()
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _where(error: dict[str, Any]) -> str:
    # ("body", "parameters", "NumEpochs") -> body.parameters.NumEpochs; ("query", "limit") -> query.limit
    return ".".join(str(part) for part in error.get("loc", ())) or "request"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            parts.append("body: not valid JSON")
        elif error.get("type") == "extra_forbidden":
            parts.append(f"{_where(error)}: unknown field")
        else:
            parts.append(f"{_where(error)}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


JSON_TYPE = "application/json"


def unsupported_body(event: Mapping[str, Any]) -> str | None:
    """Why a request's body is not one this API reads (None when it is JSON, or there is no body). Checked before
    Powertools' validation, which takes form and multipart bodies too and fails on some of them with a 500."""
    if not event.get("body"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    shown = headers.get("content-type", JSON_TYPE)
    header = Message()
    header["content-type"] = shown
    if header.get_content_type() != JSON_TYPE or header.get_content_charset("utf-8") != "utf-8":
        return f"Content-Type: expected {JSON_TYPE} (UTF-8), got {shown!r}; curl: add -H 'Content-Type: {JSON_TYPE}'"
    return None


class JsonResolver(APIGatewayRestResolver):
    """The REST resolver for routes whose bodies are JSON: any other body is a 415 that says what to send."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        problem = unsupported_body(event)
        if problem is not None:
            logger.warning("request body refused", reason=problem, path=event.get("path"))
            body = ErrorBody(error=ErrorDetail(code="UnsupportedMediaType", message=problem)).model_dump_json()
            return {"statusCode": 415, "headers": {"Content-Type": JSON_TYPE}, "body": body, "isBase64Encoded": False}
        return super().resolve(event, context)


def resolver(json_bodies: bool = True) -> APIGatewayRestResolver:
    """`json_bodies=False` for a route that reads its raw body itself (Slack's form posts)."""
    app = (JsonResolver if json_bodies else APIGatewayRestResolver)(enable_validation=True)

    def _domain(error: ControlPlaneError) -> Response[str]:
        log = logger.warning if error.status < 500 else logger.error
        log("request refused", code=error.code, reason=error.message, path=app.current_event.path)
        return error_response(error.status, error.code, error.message)

    def _invalid(error: RequestValidationError) -> Response[str]:
        message = describe_validation(list(error.errors()))
        logger.warning("request invalid", reason=message, path=app.current_event.path)
        return error_response(400, "InvalidRequest", message)

    def _key_reused(_: IdempotencyValidationError) -> Response[str]:
        return error_response(
            422, "IdempotencyKeyReused", "Idempotency-Key was used before with a different request body"
        )

    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response[str]:
        return error_response(409, "InProgress", "a request with this Idempotency-Key is still being handled")

    def _no_route(_: Exception) -> Response[str]:
        return error_response(404, "NoSuchRoute", f"no route {app.current_event.http_method} {app.current_event.path}")

    # registered by call: Powertools' decorators are untyped
    app.exception_handler(ControlPlaneError)(_domain)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(IdempotencyValidationError)(_key_reused)
    app.exception_handler(IdempotencyAlreadyInProgressError)(_in_progress)
    app.not_found(_no_route)
    return app


def caller_of(event: APIGatewayProxyEvent) -> str:
    """The IAM identity API Gateway authenticated (AWS_IAM authorisation); no identity, no access."""
    identity = event.request_context.identity
    who = identity.user_arn or identity.caller
    if not who:
        raise Unauthorized("the request carries no authenticated IAM identity")
    return who


def source_of(caller: str, ci_role_arn: str | None) -> Literal["api", "ci"]:
    """ "ci" for a session of the deploy workflow's role, else "api". STS names a session
    arn:aws:sts::<account>:assumed-role/<role name>/<session>, without the role's path."""
    if not ci_role_arn:
        return "api"
    parts = caller.split(":", 5)
    role_parts = ci_role_arn.split(":", 5)
    if len(parts) < 6 or len(role_parts) < 6:
        return "api"
    kind, _, rest = parts[5].partition("/")
    same_role = kind == "assumed-role" and rest.split("/", 1)[0] == role_parts[5].rsplit("/", 1)[-1]
    return "ci" if same_role and parts[4] == role_parts[4] else "api"

"""The REST resolver every HTTP function uses, with every error mapped to one JSON shape in one place:
{"error": {"code": ..., "message": ...}}, 4xx for what the caller can fix."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from control_plane.errors import ControlPlaneError, Unauthorized
from control_plane.models import ErrorBody, ErrorDetail
from control_plane.observability import logger

ERROR_MEANINGS = {
    400: "a field, parameter or body is invalid; the message names it",
    401: "no authenticated identity, or a bad Slack signature",
    403: "not allowed (Slack user not on the allow-list, Slack not configured)",
    404: "no such run, model version or route",
    409: "the run is not in a state that allows this, or the request is a replay",
    422: "the Idempotency-Key was used with another body",
}


def errors(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses for the error statuses a route can give, all in the one error shape."""
    return {
        status: {"description": ERROR_MEANINGS[status], "content": {"application/json": {"model": ErrorBody}}}
        for status in statuses
    }


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


def resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

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

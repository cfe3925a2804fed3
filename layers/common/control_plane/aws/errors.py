"""Translate the AWS errors that mean "no such thing" into NotFound, a page token SageMaker does not take into
InvalidRequest, and SageMaker's refusals of a change into the status the caller can act on; everything else stays as
it is (a 5xx: a denied role or a failing service is ours to fix, not the caller's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from control_plane.errors import Conflict, ControlPlaneError, InvalidRequest, NotFound, TooManyRequests

# A Describe call on an identifier we built from a validated id fails with ResourceNotFound, or with
# ValidationException where SageMaker (and moto) report an unknown ARN that way: both mean "not found".
_MISSING = {"ResourceNotFound", "ResourceNotFoundException", "ValidationException"}


@contextmanager
def not_found_as(message: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING:
            raise NotFound(message) from error
        raise


@contextmanager
def token_refused(next_token: str | None) -> Iterator[None]:
    """A `next_token` the service refuses (forged, from another list, expired) is the caller's to fix: a 400."""
    try:
        yield
    except ClientError as error:
        found = error.response.get("Error", {})
        code, message = found.get("Code"), str(found.get("Message", "")).lower()
        if next_token and (code == "InvalidToken" or (code == "ValidationException" and "token" in message)):
            raise InvalidRequest("next_token is not one this list gave, or it has expired") from error
        raise


# SageMaker answers a change the resource's state does not allow with ValidationException too ("Cannot create already
# existing endpoint", "Cannot update in-progress endpoint"; DeleteEndpoint is all a Failed endpoint takes): a 409
_STATE_WORDS = ("already existing", "in-progress", "in progress", "failed endpoint")
_REFUSALS: dict[str, type[ControlPlaneError]] = {
    "ResourceLimitExceeded": TooManyRequests,  # an account quota: the message names it
    "ThrottlingException": TooManyRequests,  # after botocore's own retries
    "ResourceInUse": Conflict,
    "ConflictException": Conflict,
    "ResourceNotFound": NotFound,
}


def _refusal(operation: str, error: ClientError) -> Exception:
    """The domain error of a SageMaker refusal, carrying SageMaker's code and message; `error` itself if it is none."""
    found = error.response.get("Error", {})
    code, message = str(found.get("Code", "")), str(found.get("Message", ""))
    kind = _REFUSALS.get(code)
    if code == "ValidationException":
        kind = Conflict if any(words in message for words in _STATE_WORDS) else InvalidRequest
        kind = NotFound if "Could not find" in message else kind
    return error if kind is None else kind(f"SageMaker refused {operation} ({code}): {message}")


@contextmanager
def refused_by_sagemaker(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        refusal = _refusal(operation, error)
        if refusal is error:
            raise
        raise refusal from error

"""Translate the AWS errors that mean "no such thing" into NotFound, and a page token SageMaker does not take into
InvalidRequest; everything else stays as it is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from control_plane.errors import InvalidRequest, NotFound

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

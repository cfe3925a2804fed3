"""Translate the AWS errors that mean "no such thing" into NotFound, everything else stays as it is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from control_plane.errors import NotFound

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

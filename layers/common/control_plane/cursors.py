"""The page tokens this API makes itself (GET /runs, GET /audit): two JSON values, base64url-encoded, and the one
answer to a token it did not make. What the two values may be is each list's to check."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from control_plane.errors import InvalidRequest

NOT_OURS = "next_token: not a token this API returned"


def encode(first: object, second: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([first, second]).encode()).decode()


def decode(token: str) -> tuple[Any, Any]:
    """The two values `encode` took; anything that is not two JSON values, base64url-encoded, is a 400."""
    try:
        first, second = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidRequest(NOT_OURS) from error
    return first, second

"""One cached boto3 client per service, so a warm Lambda reuses its connections.

Endpoints come from the standard `AWS_ENDPOINT_URL[_<SERVICE>]` variables that botocore reads itself;
no code here knows whether it talks to AWS or to the local stack.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# API Gateway gives a request 29 s; a slow call should fail well before that, with standard retries
CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=CONFIG)  # type: ignore[call-overload]


def clear() -> None:
    """Forget cached clients (tests point a fresh client at a fresh endpoint)."""
    client.cache_clear()


class LazyClient:
    """An adapter's client: the one its constructor was given (tests), else the cached client of `service`,
    created on first use so that a cold start loads only the service models a request needs."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __get__(self, adapter: object, owner: type | None = None) -> Any:
        return getattr(adapter, "_client", None) or client(self.service)

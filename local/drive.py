"""Driving the local stack as its users do."""

from __future__ import annotations

from local.emulator import REGION
from sam_stack.client import Api

# every local user's secret key: throwaway, as the local API checks the access key id and not the signature
LOCAL_SECRET_KEY = "local-secret"  # noqa: S105


def api(url: str, access_key: str) -> Api:
    """The REST API at `url`, called as the local user holding `access_key` (local/iam/users.py)."""
    return Api(url=url, access_key=access_key, secret_key=LOCAL_SECRET_KEY, region=REGION)

"""The API's routes as functions over the signed client: the answer's JSON, or ApiError with the API's error code and
message. The command line, `make start-run` and `make run` (local/drive.py) call the API through these."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable, Collection
from typing import Any

from sam_stack.client import Api

FINISHED = frozenset({"Succeeded", "Failed", "Stopped"})


class ApiError(Exception):
    """The API refused a request (status 4xx), failed (5xx), or could not be reached (status None)."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def call(api: Api, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """`method path` on the API; its JSON answer when the status is 2xx, else ApiError."""
    try:
        status, answer = api.call(method, path, body, headers=headers)
    except (urllib.error.URLError, OSError) as error:
        raise ApiError(None, "Unreachable", f"{method} {api.url}{path}: {getattr(error, 'reason', error)}") from None
    if 200 <= status < 300:
        return answer
    detail = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(detail, dict):
        raise ApiError(status, str(detail.get("code")), str(detail.get("message")))
    # API Gateway's own refusals (IAM, throttling) answer {"message": ...}
    message = answer.get("message") if isinstance(answer, dict) else answer
    raise ApiError(status, _GATEWAY_CODES.get(status, "Error"), f"{method} {path}: {message}")


_GATEWAY_CODES = {403: "AccessDenied", 429: "Throttled", 502: "BadGateway", 504: "Timeout"}


def start_run(
    api: Api,
    *,
    parameters: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    **fields: str | None,
) -> dict[str, Any]:
    """POST /runs with run-time `parameters` and the request's other `fields` (display_name, description,
    data_as_of)."""
    body = {"parameters": parameters or {}, **{k: v for k, v in fields.items() if v is not None}}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return dict(call(api, "POST", "/runs", body=body, headers=headers))


def get_run(api: Api, run_id: str) -> dict[str, Any]:
    return dict(call(api, "GET", f"/runs/{run_id}"))


class FollowTimeout(Exception):
    """The run did not reach the awaited status in time."""


def follow(
    api: Api,
    run_id: str,
    *,
    seen: Callable[[dict[str, Any]], None] | None = None,
    until_status: Collection[str] = FINISHED,
    every: float = 5,
    timeout: float | None = None,
) -> dict[str, Any]:
    """GET /runs/{run_id} every `every` seconds until its status is one of `until_status` (finished, by default);
    the run. `seen` is shown every answer; FollowTimeout after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        detail = get_run(api, run_id)
        if seen is not None:
            seen(detail)
        if detail["status"] in until_status:
            return detail
        if deadline is not None and time.monotonic() > deadline:
            raise FollowTimeout(
                f"run {run_id}: not {'/'.join(sorted(until_status))} within {timeout:.0f} s; last seen: {detail}"
            )
        time.sleep(every)

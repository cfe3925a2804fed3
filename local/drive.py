"""Driving the local stack as its users do: data in through the image's own ingest, a run started and followed over
the API, the notify function's Slack message waited for and its button pressed as Slack sends a click, the decision
and the endpoint waited for. `make run` (local/run.py) and the e2e tests drive the stack with these.

What does not come in time, or is refused, raises DriveError naming what was waited for and what was there.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from local.emulator import REGION
from local.stack import FEATURE_GROUP, SLACK_APPROVER, SLACK_SIGNING_SECRET, LocalStack
from local.webhooks import Received
from pipeline_def.names import ingest_log_uri
from sam_stack.client import Api, click
from sam_stack.container import run_module
from scratch_cli import calls

# every local user's secret key: throwaway, as the local API checks the access key id and not the signature
LOCAL_SECRET_KEY = "local-secret"  # noqa: S105
FINISHED = calls.FINISHED
# seconds ingest waits for the offline store: the local store lags seconds (local/featurestore.py), not AWS's minutes
OFFLINE_WAIT = 120.0
POSTED = "/api/chat.postMessage"

T = TypeVar("T")


class DriveError(RuntimeError):
    """The stack refused a step, or did not get where it was waited for in time."""


def api(url: str, access_key: str) -> Api:
    """The REST API at `url`, called as the local user holding `access_key` (local/iam/users.py)."""
    return Api(url=url, access_key=access_key, secret_key=LOCAL_SECRET_KEY, region=REGION)


def until(read: Callable[[], T], done: Callable[[T], bool], *, timeout: float, every: float, waited: str) -> T:
    """`read()` again every `every` seconds until `done` holds for what it read; that. DriveError after `timeout`
    seconds, naming what was `waited` for and what was read last."""
    deadline = time.monotonic() + timeout
    while not done(found := read()):
        if time.monotonic() > deadline:
            raise DriveError(f"{waited}: not within {timeout:.0f} s; last seen: {found}")
        time.sleep(every)
    return found


def container(
    module: str, *args: str, env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    """One of the image's entry points, run in container/.venv; DriveError when it exits other than `ok`."""
    done = run_module(module, *args, env=env)
    if done.returncode not in ok:
        raise DriveError(f"{module} failed (exit code {done.returncode}):\n{done.stderr or done.stdout}")
    return done


def synthesize(folder: Path, *, count: int, options: tuple[str, ...] = ()) -> None:
    """`count` synthetic labelled images and their labels.csv in `folder` (detector.synth and its `options`)."""
    container("detector.synth", "--output", str(folder), "--count", str(count), *options, env={})


def ingest(
    stack: LocalStack, dataset: Path, *, refused_ok: bool = False, wait_offline: float = OFFLINE_WAIT
) -> subprocess.CompletedProcess[str]:
    """`dataset`'s labels.csv and images into the stack's bucket and feature group, by the image's detector.ingest
    (PutRecord), which keeps the list of what it put for the runs and waits up to `wait_offline` seconds (0: not at
    all) until the offline store holds it all (the store lags, as AWS's does). It exits 1 naming the rows it refused:
    `refused_ok` goes on with the rest; 3 (DriveError) when the offline store does not hold everything in time."""
    arguments = ingest_arguments(dataset, bucket=stack.bucket, wait_offline=wait_offline)
    return container("detector.ingest", *arguments, env=stack.endpoints, ok=(0, 1) if refused_ok else (0,))


def ingest_arguments(dataset: Path, *, bucket: str, wait_offline: float = OFFLINE_WAIT) -> list[str]:
    """detector.ingest's arguments for `dataset` into the local stack's bucket and feature group."""
    arguments = ["--labels", str(dataset / "labels.csv"), "--images", str(dataset)]
    arguments += ["--bucket", bucket, "--feature-group", FEATURE_GROUP]
    return [*arguments, "--ingest-log", ingest_log_uri(bucket, FEATURE_GROUP), "--wait-offline", str(wait_offline)]


def start_run(api: Api, parameters: dict[str, Any] | None = None, *, key: str | None = None, **fields: str) -> Any:
    """POST /runs as `api`'s caller, with `parameters` and any other `fields` of the request (display_name,
    description), through the command line's client (scratch_cli.calls); the started run."""
    try:
        return calls.start_run(api, parameters=parameters, idempotency_key=key, **fields)
    except calls.ApiError as error:
        raise DriveError(f"POST /runs: {error}") from None


def follow(
    api: Api,
    run_id: str,
    *,
    until_status: frozenset[str] | set[str] = FINISHED,
    timeout: float = 180,
    every: float = 1,
    seen: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """GET /runs/{run_id} until its status is one of `until_status` (by default: finished), as `scratch-detector runs
    follow` does; the run. `seen` is shown every answer (to follow the steps as they go)."""
    try:
        return calls.follow(api, run_id, seen=seen, until_status=until_status, every=every, timeout=timeout)
    except (calls.ApiError, calls.FollowTimeout) as error:
        raise DriveError(f"GET /runs/{run_id}: {error}") from None


def slack_post(stack: LocalStack, text: str, *, path: str = POSTED, timeout: float = 30) -> Received:
    """The last call to the stand-in Slack under `path` whose text holds `text`."""

    def read() -> list[Received]:
        return [p for p in stack.slack.posts(path) if text in p.body.get("text", "")]

    try:
        return until(read, bool, timeout=timeout, every=0.2, waited=f"a Slack post to {path} saying {text!r}")[-1]
    except DriveError as error:
        raise DriveError(f"{error}; Slack got: {[p.body.get('text') for p in stack.slack.received]}") from None


def approval_request(stack: LocalStack, version: int, *, timeout: float = 30) -> dict[str, Any]:
    """The message the notify function posted for model version `version`, as Slack keeps it (with its ts)."""
    return slack_post(stack, f" v{version} ", timeout=timeout).message


def press(stack: LocalStack, message: dict[str, Any], action: str, *, reply_to: str) -> tuple[int, Any]:
    """The local approver presses `action` (approve or reject) on `message`, signed as Slack signs a click; Slack's
    response URL for it is `reply_to` under the stand-in Slack."""
    return click(
        stack.api.url,
        message,
        action=action,
        user=SLACK_APPROVER,
        signing_secret=SLACK_SIGNING_SECRET,
        response_url=f"{stack.slack.url}{reply_to}",
    )


def model_until(api: Api, version: int, status: str, *, timeout: float = 60) -> dict[str, Any]:
    """GET /models/{version} until its approval status is `status` (a click is answered at once, and the decision
    worker decides just after); the model."""
    return until(
        lambda: dict(api.call("GET", f"/models/{version}")[1]),
        lambda model: model.get("approval_status") == status,
        timeout=timeout,
        every=0.2,
        waited=f"model version {version} {status}",
    )


def endpoint_until(api: Api, done: Callable[[dict[str, Any]], bool], *, timeout: float = 180) -> dict[str, Any]:
    """GET /endpoint until the stack has its endpoint and `done` holds for it; the endpoint."""
    answer = until(
        lambda: api.call("GET", "/endpoint"),
        lambda found: found[0] == 200 and done(found[1]),
        timeout=timeout,
        every=0.5,
        waited="the endpoint",
    )
    return dict(answer[1])

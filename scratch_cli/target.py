"""Which API the command line calls, and as whom.

Precedence, first given wins: `--url URL` (the API's base URL), `--local` (the running local stack's state file),
`--stack NAME` (the CloudFormation stack's ApiUrl output), `--env dev|prod` (samconfig.toml's stack of that
environment). None of them is a usage error naming all four. On AWS the request is signed with boto3's default
credential chain (`--profile` picks a profile); on the local stack with a local user's key (`--as`, admin by default).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import boto3

from sam_stack.client import Api

# the local stack's users (local/iam/users.py) by the duty they hold; their secret keys are throwaway, since the
# local API checks the access key id and not the signature (local/drive.py)
LOCAL_KEYS = {
    "admin": "LOCALUSER",
    "runner": "LOCALRUNNER",
    "approver": "LOCALAPPROVER",
    "deployer": "LOCALDEPLOYER",
    "reader": "LOCALREADER",
}
LOCAL_SECRET_KEY = "local-secret"  # noqa: S105
LOCAL_REGION = "us-east-1"
# `make up`'s state file (local/daemon.py STATE), relative to the project checkout
LOCAL_STATE = Path("work/local/stack.json")
# https://{api id}.execute-api.{region}.amazonaws.com/{stage}
EXECUTE_API_HOST = re.compile(r"^https://[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


class TargetError(Exception):
    """No API to call, or no credentials to call it with: a usage error, worded for the user."""


@dataclass(frozen=True, kw_only=True)
class Where:
    """What the user said about the API to call and the identity to call it as."""

    url: str | None = None
    local: bool = False
    stack: str | None = None
    env: str | None = None
    profile: str | None = None
    region: str | None = None
    user: str | None = None  # --as: a local user
    state_file: Path = LOCAL_STATE
    samconfig: Path = Path("samconfig.toml")


def api_for(where: Where) -> Api:
    """The signed client of the API `where` names (the precedence above)."""
    if where.user is not None and not where.local:
        raise TargetError("--as picks a local user: use it with --local (on AWS, pick the identity with --profile)")
    if where.url:
        return _signed(where.url.rstrip("/"), where)
    if where.local:
        return local_api(where.state_file, where.user or "admin")
    if where.stack:
        return _signed(stack_url(where.stack, where), where)
    if where.env:
        return _signed(stack_url(env_stack(where.env, where.samconfig), where), where)
    raise TargetError(
        "no API given: use --url URL, --local (the stack `make up` started), --stack NAME or --env dev|prod"
    )


def local_api(state_file: Path, user: str) -> Api:
    if user not in LOCAL_KEYS:
        raise TargetError(f"--as: {user!r} is not a local user: use one of {', '.join(LOCAL_KEYS)}")
    try:
        url = str(json.loads(state_file.read_text())["api"])
    except (OSError, ValueError, KeyError):
        raise TargetError(
            f"--local: no running local stack ({state_file} not found): start one with `make up`"
        ) from None
    return Api(url=url, access_key=LOCAL_KEYS[user], secret_key=LOCAL_SECRET_KEY, region=LOCAL_REGION)


def env_stack(env: str, samconfig: Path) -> str:
    from rollout.environments import RolloutError, environment

    if not samconfig.is_file():
        raise TargetError(f"--env: no {samconfig} here: run from the project checkout, or use --stack NAME")
    try:
        return environment(env, samconfig).stack_name
    except RolloutError as error:
        raise TargetError(f"--env: {error}") from None


def _session(where: Where) -> boto3.Session:
    return boto3.Session(profile_name=where.profile, region_name=where.region)


def stack_url(stack_name: str, where: Where) -> str:
    from rollout.stack import outputs

    found = outputs(_session(where).client("cloudformation"), stack_name)
    if "ApiUrl" not in found:
        raise TargetError(f"--stack: stack {stack_name} is not deployed or has no ApiUrl output")
    return found["ApiUrl"].rstrip("/")


def _signed(url: str, where: Where) -> Api:
    return signed(url, _session(where), region=where.region)


def signed(url: str, session: boto3.Session, *, region: str | None = None) -> Api:
    """The API at `url`, signed with `session`'s credentials, in `region` (default: the URL's, else the session's)."""
    credentials = session.get_credentials()
    if credentials is None:
        raise TargetError("no AWS credentials: configure a profile (--profile) or the AWS_* variables")
    frozen = credentials.get_frozen_credentials()
    region = region or url_region(url) or session.region_name
    if not region:
        raise TargetError("no region: give --region (the API's URL does not name one)")
    return Api(
        url=url,
        access_key=str(frozen.access_key),
        secret_key=str(frozen.secret_key),
        session_token=frozen.token,
        region=region,
    )


def url_region(url: str) -> str | None:
    """The region of an execute-api URL, as API Gateway names its hosts; None for any other URL."""
    found = EXECUTE_API_HOST.match(url + "/")
    return found.group(1) if found else None

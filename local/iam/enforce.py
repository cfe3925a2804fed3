"""The local stack's IAM check in every boto3 client of the process: a request made while an identity acts
(`acting_as`) is authorised against that identity's statements before it is sent, and refused as the service refuses
it (AccessDenied, AWS's message naming the caller, the action and the resource). Requests made while no identity acts
are the emulated services' own (moto, the executor's bookkeeping, a test setting up its world) and pass.

S3 answers a GetObject or HeadObject of a missing key with 403, not 404, to a caller that may not list the bucket
(it must not learn whether the key exists): the check rewrites moto's 404 to that.

Every denial is also recorded, so a test whose code swallowed one fails anyway (local/pytest_aws.py).
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.handlers
from botocore.model import OperationModel

from local.emulator import REGION
from local.iam import check as core
from local.iam import requests, roles
from local.iam.check import AccessDenied, Identity, UnmappedOperation
from local.iam.policy import Decision, Request
from local.template import ACCOUNT

__all__ = ["AccessDenied", "Identity", "UnmappedOperation"]

BEFORE = "before-parameter-build"
AFTER = "after-call"
UNIQUE_ID = "local-iam"
_acting: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("local_iam_identity", default=None)
_lock = threading.Lock()
_recorded: list[AccessDenied] = []
_where = requests.Where(ACCOUNT, REGION)


@contextmanager
def acting_as(identity: Identity | None) -> Iterator[None]:
    """Every AWS request made in this context (this thread, and contexts copied from it) is `identity`'s."""
    token = _acting.set(identity)
    try:
        yield
    finally:
        _acting.reset(token)


def current() -> Identity | None:
    return _acting.get()


_values: dict[str, str] = {}


def configure(secretsmanager: Any, secret_logical_ids: dict[str, str]) -> dict[str, str]:
    """What only the emulated account knows and the roles name: each template secret's ARN (a Ref to a secret is its
    ARN, with a random suffix). Returns the values the roles resolve with."""
    global _values, _where
    resolve = resolve_secrets_with(secretsmanager)
    _where = requests.Where(ACCOUNT, REGION, secret_arn=resolve)  # Secrets Manager authorises on the ARN
    _values = {logical_id: resolve(name) for logical_id, name in secret_logical_ids.items()}
    return dict(_values)


def function_identity(logical_id: str) -> Identity:
    """The role a function of the template runs as."""
    return roles.function_role(logical_id, _values)


def identity_of(role_arn: str | None) -> Identity | None:
    """The template role with this ARN; None for a role the template does not hold (its policy is unknown here)."""
    return roles.by_arn(role_arn, _values) if role_arn else None


def authorise(identity: Identity, service: str, operation: str, *, params: dict[str, Any]) -> None:
    """Raise (and record) AccessDenied unless `identity` may make this request."""
    core.authorise(identity, service, operation, params=params, where=_where, on_denial=_record)


def _record(denial: AccessDenied) -> None:
    with _lock:
        _recorded.append(denial)


def record_denials(lines: list[str]) -> None:
    """Denials a job process wrote (local/iam/process.py's denial_line): recorded as this process's own."""
    for line in lines:
        data = json.loads(line)
        identity = Identity(data["logical_id"], data["arn"], ())
        request = Request(data["action"], data["resource"])
        decision = Decision(data["decision"])
        _record(AccessDenied(data["service"], data["operation"], identity, request=request, decision=decision))


def _service(model: OperationModel) -> str:
    return str(model.service_model.service_name)


def check(**kwargs: Any) -> None:
    """The `before-parameter-build` handler."""
    identity = _acting.get()
    if identity is None:
        return
    model: OperationModel = kwargs["model"]
    authorise(identity, _service(model), model.name, params=kwargs["params"])


def hide_missing(**kwargs: Any) -> None:
    """The `after-call` handler: a missing object is a 403 to a caller that may not list its bucket."""
    identity = _acting.get()
    if identity is not None:
        core.hide_missing(identity, _where, **kwargs)


def install() -> None:
    """Check every request of every botocore session of this process, those to come included."""
    for entry in ((BEFORE, check), (AFTER, hide_missing)):
        if entry not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(entry)
    import boto3

    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION._session.register(BEFORE, check, unique_id=UNIQUE_ID)
        boto3.DEFAULT_SESSION._session.register(AFTER, hide_missing, unique_id=f"{UNIQUE_ID}-after")


def take() -> list[AccessDenied]:
    """The denials since the last call (a test that provokes one takes it; the fixture fails on the rest)."""
    with _lock:
        taken = list(_recorded)
        _recorded.clear()
    return taken


def resolve_secrets_with(client: Any) -> Callable[[str], str]:
    """A secret resolver that asks the emulated Secrets Manager (as the service itself, not as the caller)."""
    known: dict[str, str] = {}

    def resolve(name: str) -> str:
        if name not in known:
            with acting_as(None):
                known[name] = str(client.describe_secret(SecretId=name)["ARN"])
        return known[name]

    return resolve

"""The IAM check itself, with no dependency but botocore: an identity, the authorisation of one request against its
statements and permissions boundary, AWS's AccessDenied, and S3's 403 for a missing key. The stack's process uses it
through local.iam.enforce; a job process of the local executor (container/.venv) loads it by path
(local/boot/sitecustomize.py, local/iam/process.py), so it imports only its siblings, relatively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import requests, usage
from .policy import Decision, Request, evaluate

ACCOUNT = "123456789012"  # the local stack's account (local.template.ACCOUNT)
# the services whose access errors are 403 AccessDenied; the JSON services answer 400 AccessDeniedException
_REST_DENIAL = {"s3": (403, "AccessDenied"), "sqs": (403, "AccessDenied")}


@dataclass(frozen=True)
class Identity:
    """A role (or user) and every statement of its identity-based policies."""

    logical_id: str
    arn: str
    statements: tuple[dict[str, Any], ...]
    # the role's permissions boundary: None when it has none; a request must be allowed by both
    boundary: tuple[dict[str, Any], ...] | None = None

    @property
    def caller(self) -> str:
        """How AWS names the caller in a denial: the role's session (a Lambda function's is the function's name)."""
        if ":role/" in self.arn:
            name = self.arn.rsplit("/", 1)[-1]
            return f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{self.logical_id}"
        return self.arn

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_id": self.logical_id,
            "arn": self.arn,
            "statements": list(self.statements),
            "boundary": list(self.boundary) if self.boundary is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        boundary = data.get("boundary")
        return cls(
            data["logical_id"],
            data["arn"],
            tuple(data["statements"]),
            tuple(boundary) if boundary is not None else None,
        )


class AccessDenied(ClientError):
    def __init__(
        self, service: str, operation: str, identity: Identity, *, request: Request, decision: Decision
    ) -> None:
        self.identity, self.request, self.decision = identity, request, decision
        status, code = _REST_DENIAL.get(service, (400, "AccessDeniedException"))
        because = {
            Decision.EXPLICIT_DENY: "with an explicit deny in an identity-based policy",
            Decision.BOUNDARY_DENY: f"because no permissions boundary allows the {request.action} action",
        }.get(decision, f"because no identity-based policy allows the {request.action} action")
        message = (
            f"User: {identity.caller} is not authorized to perform: {request.action} on resource: "
            f"{request.resource} {because}"
        )
        response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        super().__init__(response, operation)


def authorise(
    identity: Identity,
    service: str,
    operation: str,
    *,
    params: dict[str, Any],
    where: requests.Where,
    on_denial: Callable[[AccessDenied], None],
) -> None:
    """Raise AccessDenied (after `on_denial`) unless `identity` may make this request; a request it may make is
    written to the usage record (local/iam/usage.py)."""
    try:
        needed = requests.authorisations(service, operation, params, where=where)
    except KeyError as error:
        raise UnmappedOperation(service, operation) from error
    for request in needed:
        decision, _ = evaluate(identity.statements, request)
        if decision is Decision.ALLOW and identity.boundary is not None:
            capped, _ = evaluate(identity.boundary, request)
            decision = Decision.BOUNDARY_DENY if capped is not Decision.ALLOW else decision
        if decision is Decision.ALLOW:
            usage.record(identity.logical_id, identity.statements, request)
            continue
        denial = AccessDenied(service, operation, identity, request=request, decision=decision)
        on_denial(denial)
        raise denial


class UnmappedOperation(RuntimeError):
    def __init__(self, service: str, operation: str) -> None:
        super().__init__(
            f"{service}:{operation} has no row in local/iam/requests.py: the local stack cannot authorise it"
        )


def hide_missing(identity: Identity, where: requests.Where, **kwargs: Any) -> None:
    """An `after-call` handler's work: a missing object is a 403 to a caller that may not list its bucket."""
    model, parsed = kwargs["model"], kwargs["parsed"]
    if model.service_model.service_name != "s3" or model.name not in {"GetObject", "HeadObject"}:
        return
    if parsed.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
        return
    bucket = str(kwargs.get("context", {}).get("input_params", {}).get("Bucket", ""))
    listing = Request("s3:ListBucket", where.arn("s3", bucket, regional=False))
    if bucket and evaluate(identity.statements, listing)[0] is not Decision.ALLOW:
        code = "403" if model.name == "HeadObject" else "AccessDenied"
        parsed["Error"] = {"Code": code, "Message": "Forbidden" if code == "403" else "Access Denied"}
        parsed["ResponseMetadata"]["HTTPStatusCode"] = 403

"""Approvals and rejections made in SageMaker directly (the console, Studio, the CLI: anyone who may call
UpdateModelPackage), found in SageMaker's "Model Package State Change" events: recorded in the audit trail with
source `outside` and announced in the approvers' channel, once per change; such an approval is never deployed
automatically.

The control plane's own decisions are told apart by the audit record it writes for each: registry.decide records
before it updates the package, so the record is there when the change's event arrives. The event's
ApprovalDescription is no evidence: whoever may update a package writes what they like there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from control_plane import slack_messages
from control_plane.models import AuditEntry, AuditSource, Decision
from control_plane.notifications import Posted
from control_plane.ports import AuditPort, PosterPort

PACKAGE_CHANGE = "SageMaker Model Package State Change"
DECIDED: dict[str, Decision] = {"Approved": "approve", "Rejected": "reject"}
CONTROL_PLANE: set[AuditSource] = {"api", "ci", "slack"}
# registry.decide records, then updates, within its function's timeout (29 s for the API, 30 s for the Slack worker)
RECORDED_BEFORE = timedelta(seconds=60)
# SageMaker may give the change's time in whole seconds, and two machines' clocks differ a little
RECORDED_AFTER = timedelta(seconds=5)
PAGE = 50


class StateChange(BaseModel):
    """One approval or rejection as SageMaker's event tells it: which version, the new status, when and who."""

    model_config = ConfigDict(frozen=True)

    group: str
    version: int
    arn: str
    status: Literal["Approved", "Rejected"]
    at: datetime
    actor: str
    description: str | None = None

    @property
    def subject(self) -> str:
        return f"model#{self.group}/{self.version}"

    @property
    def decision(self) -> Decision:
        return DECIDED[self.status]

    @property
    def key(self) -> str:
        """The change, whichever delivery of whichever of its events tells it."""
        return f"{self.arn}#{self.status}#{self.at.isoformat(timespec='milliseconds')}"


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    outside: bool
    # False when a delivery before this one recorded it
    recorded: bool = False
    ts: str | None = None


def change_of(detail: dict[str, Any], group: str, sent: datetime) -> StateChange | None:
    """The approval or rejection of a version of `group` that an event's detail (DescribeModelPackage's output)
    tells, or None for any other event. `sent`, the event's time, stands in when the detail has no change time."""
    status = detail.get("ModelApprovalStatus")
    if detail.get("ModelPackageGroupName") != group or status not in DECIDED:
        return None
    return StateChange(
        group=group,
        version=int(detail["ModelPackageVersion"]),
        arn=str(detail["ModelPackageArn"]),
        status=status,
        at=_time(detail.get("LastModifiedTime"), sent),
        actor=actor_of(detail.get("LastModifiedBy")),
        description=detail.get("ApprovalDescription"),
    )


def actor_of(user: Any) -> str:
    """Who, as far as SageMaker's UserContext tells: the IAM identity's ARN (and the person it names as source
    identity), the Studio user profile; `unknown` when the event names no one."""
    user = user if isinstance(user, dict) else {}
    identity = user.get("IamIdentity") if isinstance(user.get("IamIdentity"), dict) else {}
    named = [
        str(identity["Arn"]) if identity.get("Arn") else None,
        f"source identity {identity['SourceIdentity']}" if identity.get("SourceIdentity") else None,
        f"Studio user {user['UserProfileName']}" if user.get("UserProfileName") else None,
    ]
    found = [n for n in named if n]
    if not found:
        return "unknown (the event names no one)"
    return found[0] if len(found) == 1 else f"{found[0]} ({', '.join(found[1:])})"


def made_by_control_plane(change: StateChange, audit: AuditPort) -> bool:
    """Whether the control plane recorded this decision: an API or Slack entry of the version deciding the same
    status, written in the moments before SageMaker's change (registry.decide records, then updates)."""
    earliest, latest = change.at - RECORDED_BEFORE, change.at + RECORDED_AFTER
    token: str | None = None
    while True:
        entries, token = audit.history(change.subject, token, PAGE, newest_first=True)
        for entry in entries:
            if entry.at < earliest:
                return False
            if entry.at <= latest and _decides(entry, change):
                return True
        if token is None:
            return False


def record(change: StateChange, audit: AuditPort) -> bool:
    """The outside decision in the audit trail, once per change (False: a delivery before this one wrote it)."""
    details = {"to": change.status, "arn": change.arn}
    if change.description:
        details["comment"] = change.description
    entry = AuditEntry(
        subject=change.subject,
        action=change.decision,
        actor=change.actor,
        source="outside",
        at=change.at,
        details=details,
    )
    return audit.record_once(entry, change.key)


def announce(change: StateChange, poster: PosterPort, channel: str) -> Posted:
    text, blocks = slack_messages.decided_outside(
        group=change.group,
        version=change.version,
        status=change.status,
        actor=change.actor,
        at=change.at,
        description=change.description,
    )
    return Posted(kind="model-decided-outside", arn=change.arn, ts=poster.post(channel, text, blocks))


def handle(change: StateChange, audit: AuditPort, announce_once: Callable[[StateChange], Posted]) -> Outcome:
    """Nothing for the control plane's own decision; an outside one is recorded, then announced (a retry after a
    failed post records nothing more)."""
    if made_by_control_plane(change, audit):
        return Outcome(outside=False)
    recorded = record(change, audit)
    return Outcome(outside=True, recorded=recorded, ts=announce_once(change).ts)


def _decides(entry: AuditEntry, change: StateChange) -> bool:
    return (
        entry.source in CONTROL_PLANE and entry.action == change.decision and entry.details.get("to") == change.status
    )


def _time(value: Any, fallback: datetime) -> datetime:
    """SageMaker's times in events: epoch milliseconds (a number or its digits) or ISO 8601."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        return fallback.astimezone(UTC)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)

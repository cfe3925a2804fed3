"""The audit trail read back: a subject's entries page by page, who started a run, what was decided on a model."""

from __future__ import annotations

from control_plane.models import AuditEntry, AuditPage, DecisionRecord, Origin
from control_plane.ports import AuditPort

# a run's start is its first entry; retries and stops come after it
RUN_ENTRIES = 20
DECISIONS = {"approve", "reject"}
# a recorded decision whose update SageMaker refused (registry.decide records before it updates)
FAILED = "decision-failed"


def audit_page(audit: AuditPort, subject: str, *, next_token: str | None, limit: int) -> AuditPage:
    """A subject's entries, newest first."""
    entries, following = audit.history(subject, next_token, limit, newest_first=True)
    return AuditPage(entries=entries, next_token=following)


def started_by(audit: AuditPort, run_id: str) -> Origin | None:
    """Who started a run and how (None for a run the control plane did not start, e.g. from the console)."""
    entries, _ = audit.history(f"run#{run_id}", None, RUN_ENTRIES, newest_first=False)
    for entry in entries:
        if entry.action == "start":
            return Origin(actor=entry.actor, source=entry.source, at=entry.at)
    return None


def decisions(audit: AuditPort, group: str, version: int) -> list[DecisionRecord]:
    """Every approval and rejection of a model version, oldest first: the control plane's, and those made in
    SageMaker directly (source `outside`); a decision whose update failed is left out."""
    entries: list[AuditEntry] = []
    token: str | None = None
    while True:
        page, token = audit.history(f"model#{group}/{version}", token, 100, newest_first=False)
        entries += page
        if token is None:
            break
    failed = {entry.details.get("decided_at") for entry in entries if entry.action == FAILED}
    return [_decision(entry) for entry in entries if entry.action in DECISIONS and stamp(entry) not in failed]


def stamp(entry: AuditEntry) -> str:
    """An entry's time as the trail keeps it (milliseconds): how a later entry names an earlier one."""
    return entry.at.isoformat(timespec="milliseconds")


def _decision(entry: AuditEntry) -> DecisionRecord:
    return DecisionRecord(
        decision=entry.action,
        actor=entry.actor,
        source=entry.source,
        at=entry.at,
        comment=entry.details.get("comment"),
        previous_status=entry.details.get("from"),
    )

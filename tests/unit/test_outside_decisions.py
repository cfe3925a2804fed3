"""Decisions made outside the control plane, told from its own by its audit records: no AWS, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_plane import history, outside_decisions, registry, slack_messages
from control_plane.models import AuditEntry, Decision
from control_plane.notifications import Posted
from control_plane.outside_decisions import StateChange
from tests.unit.fakes import FakeAudit, FakeRegistry

GROUP = "scratch-detector"
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1"
BOB = "arn:aws:sts::123456789012:assumed-role/Admin/bob"
SENT = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
# when SageMaker changed the package, as its event says
T = datetime(2026, 12, 4, 16, 38, 35, 373000, tzinfo=UTC)


def detail(**changes: Any) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": 1,
        "ModelPackageArn": ARN,
        "ModelApprovalStatus": "Approved",
        "LastModifiedTime": 1795000300000,
        "LastModifiedBy": {"IamIdentity": {"Arn": BOB, "PrincipalId": "AROA3EXAMPLEROLEID:bob"}},
        **changes,
    }


def change(at: datetime, status: str = "Approved") -> StateChange:
    found = outside_decisions.change_of(
        detail(ModelApprovalStatus=status, LastModifiedTime=at.isoformat()), GROUP, SENT
    )
    assert found is not None
    return found


def decided(audit: FakeAudit, at: datetime, decision: Decision = "approve", source: Any = "api") -> None:
    to = {"approve": "Approved", "reject": "Rejected"}[decision]
    audit.record(
        AuditEntry(subject=f"model#{GROUP}/1", action=decision, actor="alice", source=source, at=at, details={"to": to})
    )


# ---------- the control plane records first ----------


class WatchedRegistry(FakeRegistry):
    """Sees what the audit trail holds when the package is updated, or refuses the update."""

    def __init__(self, audit: FakeAudit, refuse: bool = False) -> None:
        super().__init__()
        self.audit, self.refuse = audit, refuse
        self.seen: list[list[str]] = []

    def set_approval(self, arn: str, status: str, description: str) -> None:
        self.seen.append([e.action for e in self.audit.entries])
        if self.refuse:
            raise TimeoutError("SageMaker did not answer")
        super().set_approval(arn, status, description)


def test_a_decision_is_recorded_before_sagemaker_is_updated() -> None:
    # Given a registered model
    audit = FakeAudit()
    reg = WatchedRegistry(audit)
    reg.add(1)

    # When it is approved
    registry.decide(
        registry.DecideCommand(version=1, decision="approve", actor="a", comment="ok", source="api"), reg, audit
    )

    # Then the record was there when the update (and so its event) happened
    assert reg.seen == [["approve"]]


def test_a_decision_whose_update_fails_is_recorded_as_failed_and_not_shown() -> None:
    audit = FakeAudit()
    # Given a registry whose update fails
    reg = WatchedRegistry(audit, refuse=True)
    reg.add(1)
    command = registry.DecideCommand(version=1, decision="approve", actor="a", comment="ok", source="api")

    # When a decision is made, Then the error reaches the caller
    with pytest.raises(TimeoutError):
        registry.decide(command, reg, audit)

    # And the trail says the recorded decision was not made, which the model's decisions leave out
    assert [(e.action, e.details.get("error")) for e in audit.entries] == [
        ("approve", None),
        ("decision-failed", "TimeoutError"),
    ]
    assert audit.entries[1].details["decided_at"] == history.stamp(audit.entries[0])
    assert history.decisions(audit, GROUP, 1) == []


# ---------- what the event tells ----------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795000300000, datetime(2026, 11, 18, 11, 11, 40, tzinfo=UTC)),
        ("1795000300000", datetime(2026, 11, 18, 11, 11, 40, tzinfo=UTC)),
        ("2021-02-24T17:00:14Z", datetime(2021, 2, 24, 17, 0, 14, tzinfo=UTC)),
        ("2026-12-04T16:38:35.373000+00:00", datetime(2026, 12, 4, 16, 38, 35, 373000, tzinfo=UTC)),
        (None, SENT),
        ("yesterday", SENT),
    ],
)
def test_the_change_time_is_read_as_sagemaker_writes_it(value: Any, expected: datetime) -> None:
    # When an event gives the change's time this way
    found = outside_decisions.change_of(detail(LastModifiedTime=value), GROUP, SENT)

    # Then it is that time in UTC (the event's own time when the detail has none)
    assert found is not None
    assert found.at == expected


@pytest.mark.parametrize(
    ("user", "actor"),
    [
        ({"IamIdentity": {"Arn": BOB}}, BOB),
        (
            {"IamIdentity": {"Arn": BOB, "SourceIdentity": "bob@example.com"}},
            f"{BOB} (source identity bob@example.com)",
        ),
        ({"UserProfileName": "dana", "IamIdentity": {"Arn": BOB}}, f"{BOB} (Studio user dana)"),
        ({"UserProfileName": "dana", "DomainId": "d-1"}, "Studio user dana"),
        ({}, "unknown (the event names no one)"),
        (None, "unknown (the event names no one)"),
    ],
)
def test_the_actor_is_who_sagemaker_names_as_last_modifier(user: Any, actor: str) -> None:
    # When an event names the last modifier this way
    found = outside_decisions.change_of(detail(LastModifiedBy=user), GROUP, SENT)

    # Then the decision's actor says as much as it tells
    assert found is not None
    assert found.actor == actor


@pytest.mark.parametrize(
    "changes",
    [{"ModelPackageGroupName": "someone-else"}, {"ModelApprovalStatus": "PendingManualApproval"}],
)
def test_other_groups_and_registrations_are_no_decisions(changes: dict[str, str]) -> None:
    # Then another group's package, or a registration, is no decision of ours
    assert outside_decisions.change_of(detail(**changes), GROUP, SENT) is None


# ---------- whose decision ----------


@pytest.mark.parametrize(
    ("recorded", "decision", "source", "ours"),
    [
        (T - timedelta(milliseconds=200), "approve", "api", True),
        (T - timedelta(seconds=25), "approve", "slack", True),
        # SageMaker's time in whole seconds can come before the record's milliseconds
        (T + timedelta(milliseconds=600), "approve", "api", True),
        (T - timedelta(milliseconds=200), "reject", "api", False),
        (T - timedelta(milliseconds=200), "approve", "outside", False),
        (T - timedelta(minutes=5), "approve", "api", False),
        (T + timedelta(minutes=1), "approve", "api", False),
    ],
)
def test_a_decision_is_the_control_planes_when_it_recorded_the_same_one_just_before(
    recorded: datetime, decision: Decision, source: str, ours: bool
) -> None:
    # Given one decision in the trail
    audit = FakeAudit()
    decided(audit, recorded, decision, source)

    # Then SageMaker's approval at T is the control plane's only when that is its record, written just before
    assert outside_decisions.made_by_control_plane(change(T), audit) is ours


def test_the_records_are_read_page_by_page_back_to_the_window() -> None:
    # Given the API's approval recorded under more entries than a page holds
    audit = FakeAudit()
    decided(audit, T - timedelta(seconds=30))
    for n in range(outside_decisions.PAGE + 5):
        decided(audit, T - timedelta(seconds=20) + timedelta(milliseconds=n), "reject", "outside")

    # Then the approval at T is found to be the API's
    assert outside_decisions.made_by_control_plane(change(T), audit) is True


# ---------- recorded and announced once ----------


def test_an_outside_decision_is_recorded_once_and_announced_through_the_once_wrapper() -> None:
    # Given an approval no record explains, told twice
    audit, announced = FakeAudit(), []

    def announce(found: StateChange) -> Posted:
        announced.append(found)
        return Posted(kind="model-decided-outside", arn=found.arn, ts="1.2")

    first = outside_decisions.handle(change(T), audit, announce)
    again = outside_decisions.handle(change(T), audit, announce)

    # Then it is recorded once, as made outside by whom the event names, when SageMaker made it
    assert (first.outside, first.recorded, again.recorded) == (True, True, False)
    [entry] = audit.entries
    assert (entry.subject, entry.action, entry.source, entry.actor, entry.at) == (
        f"model#{GROUP}/1",
        "approve",
        "outside",
        BOB,
        T,
    )
    assert [d.source for d in history.decisions(audit, GROUP, 1)] == ["outside"]
    assert len(announced) == 2  # the wrapper (Once) holds the post to one


def test_the_control_planes_decision_is_neither_recorded_nor_announced() -> None:
    # Given the API's approval recorded a second before SageMaker's change
    audit = FakeAudit()
    decided(audit, T - timedelta(seconds=1))

    # When the change's event is handled, Then nothing is announced or recorded
    outcome = outside_decisions.handle(change(T), audit, lambda _: pytest.fail("announced"))

    assert outcome.outside is False
    assert len(audit.entries) == 1


def test_the_announcement_shows_what_the_outside_caller_wrote_as_text() -> None:
    # When the outside approval's description holds Slack markup
    text, blocks = slack_messages.decided_outside(
        group=GROUP, version=1, status="Approved", actor=BOB, at=T, description="<!channel> trust me & ship"
    )

    # Then the message names the version, the status, who, from where and that it was not deployed
    assert text.startswith(f"{GROUP} v1 was Approved outside the control plane, in SageMaker directly, by {BOB}")
    assert "not deployed automatically (POST /models/1/deploy deploys it)" in text
    # And shows the description as text, pinging no one
    shown = blocks[0]["text"]["text"]
    assert "&lt;!channel&gt; trust me &amp; ship" in shown
    assert "<!channel>" not in shown

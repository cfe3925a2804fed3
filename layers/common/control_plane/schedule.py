"""The schedule's start: one decision per scheduled time. No run while another is executing (by default), and, with
the config's `schedule.only_when_data_changed`, none when the labelled data has not changed since the last successful
run (control_plane.new_data). A tick that starts nothing records why in the audit trail, under `schedule#<pipeline>`."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from control_plane import new_data
from control_plane.models import AuditEntry
from control_plane.new_data import DataCheck
from control_plane.pipeline_config import load_config
from control_plane.ports import AuditPort, ConfigSource, ListingPort, PipelinesPort
from control_plane.runs import as_of_text, record_start, run_id_of, token
from pipeline_def.names import DATA_AS_OF

# how far back to look for an executing run; runs are listed newest first
RECENT_RUNS = 50


class ScheduledTick(BaseModel):
    model_config = ConfigDict(frozen=True)

    time: datetime


class ScheduleOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    started: bool
    run_id: str | None = None
    reason: str
    # what the data check found (control_plane.new_data; "off": not asked); None when a running run decided
    data_check: new_data.Verdict | None = None


def subject(pipeline: str) -> str:
    """The audit trail's subject of the schedule's own decisions."""
    return f"schedule#{pipeline}"


def scheduled_start(
    tick: ScheduledTick,
    pipelines: PipelinesPort,
    audit: AuditPort,
    *,
    skip_if_running: bool,
    config: ConfigSource,
    listing: ListingPort,
) -> ScheduleOutcome:
    when = tick.time.astimezone(UTC)
    if skip_if_running:
        recent, _ = pipelines.list_executions(None, RECENT_RUNS)
        running = [
            run_id_of(r["PipelineExecutionArn"]) for r in recent if r.get("PipelineExecutionStatus") == "Executing"
        ]
        if running:
            reason = f"run {running[0]} is still executing"
            return _skipped(audit, pipelines.name, when=when, reason=reason, details={"executing_run": running[0]})
    data = _data_check(pipelines, config, listing)
    if not data.start:
        return _skipped(
            audit, pipelines.name, when=when, reason=data.reason, details=data.details, verdict=data.verdict
        )
    # the same scheduled time gives the same token, so SageMaker starts one run however often it is delivered
    client_token = token(pipelines.name, "schedule", when.isoformat())
    # the config's values, and the data as of the scheduled time (Evaluate reads the champion from the registry)
    parameters: dict[str, str] = {DATA_AS_OF: as_of_text(when)}
    arn = pipelines.start(
        parameters,
        display_name=f"scheduled-{when:%Y%m%d-%H%M}",
        description=f"Started by the schedule for {when.isoformat()}",
        token=client_token,
    )
    record_start(
        audit,
        arn,
        parameters,
        actor="schedule",
        source="schedule",
        scheduled_time=when.isoformat(),
        data_check=data.reason,
    )
    return ScheduleOutcome(
        started=True, run_id=run_id_of(arn), reason=f"scheduled: {data.reason}", data_check=data.verdict
    )


def _data_check(pipelines: PipelinesPort, config: ConfigSource, listing: ListingPort) -> DataCheck:
    """The config's setting, then the check; a config that cannot be read starts the run (fail open, as the check)."""
    try:
        settings, _ = load_config(config)
    except Exception as error:  # fail open, deliberately: the run starts and its audit entry says why
        return DataCheck(verdict="unknown", reason=f"could not read the config's schedule settings: {error}")
    if not settings.schedule.only_when_data_changed:
        return DataCheck(verdict="off", reason="schedule.only_when_data_changed is false: every tick starts a run")
    return new_data.check(pipelines, listing)


def _skipped(
    audit: AuditPort,
    pipeline: str,
    *,
    when: datetime,
    reason: str,
    details: dict[str, str],
    verdict: new_data.Verdict | None = None,
) -> ScheduleOutcome:
    """Nothing started: why, in the audit trail once per scheduled time (at that time, so a repeat writes nothing)."""
    entry = AuditEntry(
        subject=subject(pipeline),
        action="skip",
        actor="schedule",
        source="schedule",
        at=when,
        details={"scheduled_time": when.isoformat(), "reason": reason, **details},
    )
    audit.record_once(entry, f"{subject(pipeline)}#{when.isoformat()}")
    return ScheduleOutcome(started=False, reason=reason, data_check=verdict)

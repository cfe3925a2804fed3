"""The schedule's start: one run per scheduled time, none while another is executing (by default)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from control_plane.ports import AuditPort, PipelinesPort
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


def scheduled_start(
    tick: ScheduledTick, pipelines: PipelinesPort, audit: AuditPort, *, skip_if_running: bool
) -> ScheduleOutcome:
    if skip_if_running:
        recent, _ = pipelines.list_executions(None, RECENT_RUNS)
        running = [
            run_id_of(r["PipelineExecutionArn"]) for r in recent if r.get("PipelineExecutionStatus") == "Executing"
        ]
        if running:
            return ScheduleOutcome(started=False, reason=f"run {running[0]} is still executing")
    when = tick.time.astimezone(UTC)
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
    record_start(audit, arn, parameters, actor="schedule", source="schedule", scheduled_time=when.isoformat())
    return ScheduleOutcome(started=True, run_id=run_id_of(arn), reason="scheduled")

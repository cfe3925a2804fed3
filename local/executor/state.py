"""Executions and the jobs they ran, saved as JSON so that a restarted stack still answers for them.

Written from the dataclasses' own fields, every few seconds while the stack runs and when it stops; an execution or
job that was running when the stack stopped, or was killed, comes back Stopped, with the reason. Each record comes
back on its own: a damaged one is named and skipped."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local import persist
from local.executor.jobs import Job
from local.executor.records import TERMINAL, Execution, StepRun
from local.persist import Skipped

if TYPE_CHECKING:
    from local.executor.engine import Executor

INTERRUPTED = "Stopped: the local stack stopped during the run"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _fields(record: Any) -> dict[str, Any]:
    """A record's fields as JSON values; its threading events are not state."""
    return {
        f.name: _plain(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if not isinstance(getattr(record, f.name), threading.Event)
    }


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def save_state(executor: Executor, path: Path) -> None:
    with executor.lock:
        executions = [
            {**_fields(e), "steps": [_fields(s) for s in e.steps.values()]} for e in executor.executions.values()
        ]
        jobs = [_fields(j) for j in executor.jobs.values()]
    persist.write_text(path, json.dumps({"executions": executions, "jobs": jobs}, default=str, indent=1))


def load_state(executor: Executor, path: Path) -> list[Skipped]:
    """What `save_state` kept, each job and execution on its own; those that could not come back."""
    skipped: list[Skipped] = []
    state: dict[str, Any] = {}
    if path.exists():
        persist.attempt("the saved executions and jobs", lambda: state.update(json.loads(path.read_text())), skipped)
    for raw in state.get("jobs", []):
        persist.attempt(f"job {raw.get('name')}", partial(_load_job, executor, raw), skipped)
    for raw in state.get("executions", []):
        persist.attempt(f"execution {raw.get('arn')}", partial(_load_execution, executor, raw), skipped)
    return skipped


def _load_job(executor: Executor, raw: dict[str, Any]) -> None:
    job = Job(
        **{
            **raw,
            "folder": Path(raw["folder"]),
            "status": raw["status"] if raw["status"] != "InProgress" else "Stopped",
            "created": _time(raw["created"]) or datetime.now(UTC),
            "started": _time(raw["started"]),
            "ended": _time(raw["ended"]),
            "metrics": {k: (float(v), _time(t) or datetime.now(UTC)) for k, (v, t) in raw["metrics"].items()},
        }
    )
    executor.jobs[job.name] = job


def _load_execution(executor: Executor, raw: dict[str, Any]) -> None:
    steps = {}
    for s in raw["steps"]:
        run = StepRun(**{**s, "started": _time(s["started"]), "ended": _time(s["ended"])})
        if run.status not in TERMINAL:
            run.status, run.failure_reason = "Stopped", INTERRUPTED
        steps[run.name] = run
    fields = {k: v for k, v in raw.items() if k != "steps"}
    execution = Execution(
        **{**fields, "created": _time(raw["created"]), "modified": _time(raw["modified"]), "steps": steps}
    )
    if execution.status not in TERMINAL:
        execution.status, execution.failure_reason = "Stopped", INTERRUPTED
    executor.executions[execution.arn] = execution

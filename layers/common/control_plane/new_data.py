"""Whether the labelled data changed since the last successful run, told without running a job: what the schedule
asks before it starts one (control_plane.schedule).

The question is "would Preprocess read other approved labels than the last successful run's manifest holds?". A
Lambda cannot read the offline store's parquet cheaply, so the check asks S3 instead: is there an object under the
offline store's prefix (the processing input the deployed definition's Preprocess step reads) that S3 last wrote at
or after the last successful run's data time? That time is the run's `DataAsOf` parameter when it has one, else its
start (ListPipelineExecutions' StartTime, when it was created; Preprocess read the store later still, so an earlier
time can only find more).

Why that suffices: Feature Store writes offline rows in new objects and never changes an object in place, setting a
row's `write_time` before it writes the object; Preprocess keeps the rows written at or before its as-of time. A row
the last run did not see was written after its data time, and so was its object. S3's listings give LastModified in
whole seconds, so the check compares with the data time rounded down to the second: an object of that same second
counts as new (one run too many, never one too few).

What it sees, and what it cannot:
- a new, relabelled or deleted record (PutRecord, DeleteRecord): a new object, so "changed". Right.
- a record written again unchanged, or a REJECTED record: a new object too, so "changed", although Preprocess would
  read the same approved labels: a run starts and trains on the same data (its manifest has the last one's digest).
- an image overwritten in S3 without a new record: not seen (the images are not listed), so "unchanged", although the
  next run would read the new pixels. Putting its record again makes it seen.
- the offline store's location changed (the group created again, another OfflineStoreUri): "changed", whatever the
  new prefix holds.
- a run still executing, stopped or failed is not a successful run: the check compares with the last that succeeded.

It fails OPEN: when the check itself cannot run (a listing or a run's parameters refused, a DataAsOf that does not
parse, more objects than one tick lists), the scheduled run starts and its audit entry says why nothing could be
told. Failing closed would be the quiet failure: a schedule that never trains again, with nobody told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from control_plane.ports import ListingPort, PipelinesPort
from control_plane.runs import run_id_of
from pipeline_def.names import DATA_AS_OF, OFFLINE_STORE_INPUT, PREPROCESS_STEP

# how far back (newest first) to look for the last successful run: pages of ListPipelineExecutions' largest size
RUN_PAGES, RUN_PAGE = 10, 100
# how many objects one tick lists before it gives up telling (and starts the run): 50 pages of ListObjectsV2
MAX_OBJECTS = 50_000

# "off": not asked (the config's schedule.only_when_data_changed is false)
Verdict = Literal["changed", "unchanged", "no-successful-run", "unknown", "off"]


class CheckFailed(Exception):
    """The check could not tell (its message says why)."""


@dataclass(frozen=True, kw_only=True)
class DataCheck:
    verdict: Verdict
    # one line for a person: what was compared and what was found
    reason: str
    details: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> bool:
        """Only "unchanged" holds a run back: a failed check starts it (fail open)."""
        return self.verdict != "unchanged"


def check(pipelines: PipelinesPort, listing: ListingPort) -> DataCheck:
    """Whether the data changed since the last successful run; "unknown", with why, when that cannot be told."""
    try:
        return _check(pipelines, listing)
    except Exception as error:  # fail open, deliberately: whatever stopped the check, the run starts and says why
        return DataCheck(verdict="unknown", reason=f"could not tell whether the data changed: {error}")


def _check(pipelines: PipelinesPort, listing: ListingPort) -> DataCheck:
    run = last_successful_run(pipelines)
    if run is None:
        looked = RUN_PAGES * RUN_PAGE
        return DataCheck(verdict="no-successful-run", reason=f"no successful run among the newest {looked}")
    arn = run["PipelineExecutionArn"]
    run_id = run_id_of(arn)
    since, basis = data_time(pipelines, run)
    store = offline_store(pipelines.definition())
    details = {"last_successful_run": run_id, "data_as_of": since.isoformat(), "offline_store": store}
    then = offline_store(pipelines.definition(arn))
    if then != store:
        reason = f"the offline store moved since run {run_id} (it read {then}; the next run reads {store})"
        return DataCheck(verdict="changed", reason=reason, details=details)
    scan = listing.written_since(store, since.replace(microsecond=0), max_objects=MAX_OBJECTS)
    details["objects_examined"] = str(scan.examined)
    if scan.newer:
        details["newest_object"] = scan.newer[0]
        reason = (
            f"{len(scan.newer)} offline-store object(s) written since run {run_id}'s data time "
            f"{since.isoformat()} ({basis}), the newest {scan.newer[0]}"
        )
        return DataCheck(verdict="changed", reason=reason, details=details)
    if not scan.complete:
        raise CheckFailed(f"the offline store {store} has more than {MAX_OBJECTS} objects, more than one tick lists")
    reason = (
        f"nothing written to the offline store since run {run_id}'s data time {since.isoformat()} ({basis}): "
        f"{scan.examined} objects, all older"
    )
    return DataCheck(verdict="unchanged", reason=reason, details=details)


def last_successful_run(pipelines: PipelinesPort) -> dict[str, Any] | None:
    """The newest run whose status is Succeeded (its ListPipelineExecutions summary), or None."""
    token = None
    for _ in range(RUN_PAGES):
        page, token = pipelines.list_executions(token, RUN_PAGE)
        succeeded = [r for r in page if r.get("PipelineExecutionStatus") == "Succeeded"]
        if succeeded:
            return succeeded[0]
        if not token:
            return None
    return None


def data_time(pipelines: PipelinesPort, run: dict[str, Any]) -> tuple[datetime, str]:
    """The time the run's data was read as of, and where that time comes from."""
    arn = run["PipelineExecutionArn"]
    value = pipelines.execution_parameters(arn).get(DATA_AS_OF, "")
    if not value:
        return run["StartTime"], "its start: it has no DataAsOf"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise CheckFailed(f"run {run_id_of(arn)}'s DataAsOf {value!r} is not an ISO 8601 time with an offset")
    return parsed, "its DataAsOf"


def offline_store(definition: dict[str, Any]) -> str:
    """The offline-store prefix a definition's Preprocess step reads."""
    for step in definition.get("Steps", []):
        if step.get("Name") != PREPROCESS_STEP:
            continue
        for item in step.get("Arguments", {}).get("ProcessingInputs", []):
            uri = item.get("S3Input", {}).get("S3Uri")
            if item.get("InputName") == OFFLINE_STORE_INPUT and isinstance(uri, str):
                return uri
    raise CheckFailed(f"the definition has no {PREPROCESS_STEP} step reading the {OFFLINE_STORE_INPUT} input")

"""The API's request and response models and the records the use cases exchange.

Requests forbid unknown fields, so a misspelt field is a 400 that names it rather than a silent default.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

RunStatus = Literal["Executing", "Stopping", "Stopped", "Failed", "Succeeded"]
ApprovalStatus = Literal["Approved", "Rejected", "PendingManualApproval"]
Decision = Literal["approve", "reject"]
ParameterValue = str | int | float | bool

# SageMaker's own patterns: an execution id is 12 lowercase letters or digits, a display name is
# alphanumerics and inner hyphens
RUN_ID_PATTERN = r"^[a-z0-9]{12}$"
# what the audit trail is about: a run, a model version of a group, the endpoint (SageMaker's name patterns)
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
# the schedule's own decisions (a tick that started nothing, and why) are about its pipeline
_PIPELINE = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"
SUBJECT_PATTERN = rf"^(run#[a-z0-9]{{12}}|model#{_NAME}/[1-9][0-9]{{0,8}}|endpoint#{_NAME}|schedule#{_PIPELINE})$"
# `outside`: an approval or rejection made in SageMaker directly (console, Studio, CLI), which the control plane
# found in SageMaker's event and recorded (control_plane.outside_decisions)
AuditSource = Literal["api", "ci", "slack", "schedule", "event", "outside"]
# SageMaker's PipelineExecutionDisplayName: its pattern (which hyphens can stretch) and at most 82 characters
DisplayName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$", max_length=82)]
# Free text that reaches a SageMaker field (descriptions are Java's `.*`, which no line terminator matches):
# one line, and no control character either; template.yaml's request models say the same
ONE_LINE = r"^[^\x00-\x1F\x7F\u0085\u2028\u2029]*$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class StartRunRequest(_Request):
    """Body of POST /runs: run-time parameter overrides, checked against the pipeline's declared parameters."""

    parameters: dict[str, ParameterValue] = Field(default_factory=dict, max_length=200)
    display_name: DisplayName | None = None
    description: Annotated[str, StringConstraints(max_length=1024, pattern=ONE_LINE)] | None = None
    # the run's data time (the pipeline's DataAsOf): ISO 8601 with a UTC offset, not in the future; default the
    # request's time. control_plane.runs.data_as_of checks it and names this field when it is wrong
    data_as_of: Annotated[str, StringConstraints(max_length=64)] | None = None


class DecisionRequest(_Request):
    """Body of POST /models/{version}/approve and /reject."""

    comment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512, pattern=ONE_LINE)]


class RunStarted(_Response):
    run_id: str
    execution_arn: str
    parameters: dict[str, str]


class RunSummary(_Response):
    run_id: str
    execution_arn: str
    status: str
    display_name: str | None = None
    started: datetime | None = None


class RunPage(_Response):
    runs: list[RunSummary]
    next_token: str | None = None


class StoreScan(BaseModel):
    """What a listing of the offline store found written at or after a time (control_plane.new_data)."""

    model_config = ConfigDict(frozen=True)

    # objects listed (up to the first page with a newer one)
    examined: int
    # the keys of that page written at or after the time, newest first
    newer: list[str] = Field(default_factory=list)
    newest: datetime | None = None
    # False: the listing stopped at its limit without finding one and without reaching the end
    complete: bool = True


class JobUsage(_Response):
    """What a step's job used and an estimate of its cost (control_plane.costs): instance-seconds are the billable
    seconds on each of instance_count instances; spot_saving is AWS's 1 - billable/training of a spot training job."""

    instance_type: str
    instance_count: int
    billable_seconds: int | None = None
    training_seconds: int | None = None
    spot: bool = False
    spot_saving: float | None = None
    estimated_cost: float | None = None
    # what the estimate rests on, or why there is none
    cost_basis: str = ""


class RunCost(_Response):
    """The run's jobs' estimated cost at the config's on-demand list prices (region, as_of): not the bill."""

    estimated: float | None = None
    currency: str = "USD"
    region: str | None = None
    as_of: date | None = None
    # every job step has an estimate
    complete: bool = False
    # a spot training job is priced on demand: the estimate is at most what it cost
    upper_bound: bool = False
    # why the jobs without an estimate have none
    unpriced: list[str] = Field(default_factory=list)


class Step(_Response):
    name: str
    status: str
    started: datetime | None = None
    ended: datetime | None = None
    attempts: int | None = None
    cache_hit: bool = False
    failure_reason: str | None = None
    job_arn: str | None = None
    logs_url: str | None = None
    # a Training or Processing step's job: instances, billable seconds, estimated cost
    job: JobUsage | None = None


class Origin(_Response):
    """Who started a run and how: through the API, from CI (the deploy workflow's role) or by the schedule."""

    actor: str
    source: AuditSource
    at: datetime


class DecisionRecord(_Response):
    """An approval or rejection: who, when, from where, why."""

    decision: str
    actor: str
    source: AuditSource
    at: datetime
    comment: str | None = None
    previous_status: str | None = None


class Artefacts(_Response):
    """Short-lived presigned GET URLs of a run's results (absent: not written yet, or not kept)."""

    expires_at: datetime
    predictions_png: str | None = None
    training_curves_png: str | None = None
    evaluation_json: str | None = None
    model_archive: str | None = None


class ModelSummary(_Response):
    version: int
    arn: str
    approval_status: str
    created: datetime | None = None
    map: float | None = None
    run_id: str | None = None


class ModelDetail(ModelSummary):
    approval_description: str | None = None
    image_uri: str | None = None
    model_data_url: str | None = None
    evaluation_uri: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # from the audit trail, oldest first
    decisions: list[DecisionRecord] = Field(default_factory=list)
    # the run that trained it, and who started that run
    run_status: str | None = None
    started_by: Origin | None = None
    artefacts: Artefacts | None = None
    # None: a model registered before its runs pinned their data
    dataset: DatasetRef | None = None


class DatasetRef(_Response):
    """The data a model learned from, as its package's metadata names it: the run's as-of time and the manifest
    (every image of every split with its version and checksum) with its sha256."""

    as_of: str | None = None
    manifest_uri: str
    manifest_sha256: str | None = None


class ModelPage(_Response):
    models: list[ModelSummary]
    next_token: str | None = None


class DatasetSummary(_Response):
    """What Preprocess made of the offline store (its dataset_report.json): the images per split, the records it
    dropped, and the approved records ingested that the offline store did not hold yet when it ran (Feature Store
    writes it within 15 minutes of PutRecord; None: the run had no ingest log to compare with)."""

    images: int | None = None
    splits: dict[str, int] = Field(default_factory=dict)
    dropped: int = 0
    not_in_offline_store: int | None = None
    # the run's as-of time, the digest of its manifest and the rows written after the as-of time (left out)
    as_of: str | None = None
    manifest_sha256: str | None = None
    written_after_as_of: int | None = None


class SplitChanges(_Response):
    """One split's images since the champion's data: `added` (new to the split, or moved into it), `removed`,
    `relabelled` (other boxes), `pixels_changed` (other image bytes), and the split's size now and then."""

    added: int = 0
    removed: int = 0
    relabelled: int = 0
    pixels_changed: int = 0
    images: int = 0
    champion_images: int = 0


class TotalChanges(SplitChanges):
    """The whole dataset's changes, each image counted once: `moved` images changed split (added to one split and
    removed from another in the per-split figures)."""

    moved: int = 0


class DataChanges(_Response):
    """What changed in the data since the champion: Evaluate's comparison of the run's dataset manifest with the
    champion's, per split and in total, with a few example source_refs of each kind; or, in `absent`, why there is
    none (no champion, a champion registered without a manifest, a manifest that could not be read or is not the
    one its package names). `summary` is the line the approval request shows."""

    champion_version: int | None = None
    splits: dict[str, SplitChanges] = Field(default_factory=dict)
    totals: TotalChanges | None = None
    examples: dict[str, list[str]] = Field(default_factory=dict)
    absent: str | None = None
    summary: str = ""


class TrainProgress(_Response):
    """The latest epoch line of an executing Train step: `text` is `epoch 9/19  loss ...  about 4 min left`."""

    epoch: int
    total: int | None = None
    seconds_per_epoch: float | None = None
    fields: dict[str, str]
    text: str


class RunDetail(_Response):
    run_id: str
    execution_arn: str
    status: str
    display_name: str | None = None
    description: str | None = None
    started: datetime | None = None
    last_modified: datetime | None = None
    failure_reason: str | None = None
    parameters: dict[str, str]
    steps: list[Step]
    training_metrics: dict[str, float] = Field(default_factory=dict)
    evaluation: dict[str, Any] | None = None
    dataset: DatasetSummary | None = None
    # what changed in the data since the champion (None: not evaluated, or evaluated before Evaluate compared data)
    data_changes: DataChanges | None = None
    model: ModelSummary | None = None
    started_by: Origin | None = None
    artefacts: Artefacts | None = None
    cost: RunCost | None = None
    # an executing Train step's latest epoch, from the training job's log (DescribeTrainingJob has none)
    progress: TrainProgress | None = None


class DecisionResult(_Response):
    version: int
    approval_status: str
    changed: bool
    approval_description: str | None = None


class EndpointState(_Response):
    """The stack's real-time endpoint: what it serves and in what state (SageMaker's EndpointStatus)."""

    name: str
    status: str
    version: int | None = None
    model: str | None = None
    endpoint_config: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None
    # the version an update is bringing in, while the endpoint still serves `version`
    deploying: int | None = None
    failure_reason: str | None = None
    created: datetime | None = None
    last_modified: datetime | None = None


class ActiveConfig(_Response):
    parameter: str
    version: int | None
    valid: bool
    config: dict[str, Any] | None = None
    errors: list[str] = Field(default_factory=list)


class AuditEntry(_Response):
    """One line of the audit trail: who did what to which run or model, from where."""

    subject: str
    action: str
    actor: str
    source: AuditSource
    at: datetime
    details: dict[str, str] = Field(default_factory=dict)


class AuditPage(_Response):
    entries: list[AuditEntry]
    next_token: str | None = None


class ErrorDetail(_Response):
    code: str
    message: str


class ErrorBody(_Response):
    error: ErrorDetail

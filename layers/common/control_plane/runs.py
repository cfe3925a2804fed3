"""Pipeline runs: start (with checked overrides), list, describe step by step, stop, retry."""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from control_plane import artefacts, costs, cursors, data_changes, history, progress
from control_plane.costs import PriceTable
from control_plane.errors import Conflict, InvalidRequest
from control_plane.models import (
    AuditEntry,
    AuditSource,
    DatasetSummary,
    JobUsage,
    ModelSummary,
    ParameterValue,
    RunDetail,
    RunPage,
    RunStarted,
    RunStatus,
    RunSummary,
    StartRunRequest,
    Step,
    TrainProgress,
)
from control_plane.ports import (
    ArtefactPort,
    AuditPort,
    EpochEventReader,
    PipelinesPort,
    RegistryPort,
    ReportReader,
)
from control_plane.registry import model_summary
from control_plane.service_text import clip, utf16_length
from pipeline_def.names import DATA_AS_OF, DATASET_REPORT, EVALUATION_FILE, RAISE_ONLY

AWS_PAGE = 100
# SageMaker's NextToken: at most 8192 characters matching `.*`, and Java's dot matches no line terminator
NEXT_TOKEN_MAX_LENGTH = 8192
NEXT_TOKEN_PATTERN = "^[^\n\r\u0085\u2028\u2029]*$"  # noqa: S105 (a pattern, not a secret)
# how many service pages one GET /runs reads while filtering by status before it hands back a cursor
MAX_PAGES_PER_REQUEST = 5
# StartPipelineExecution's limits: a parameter's value, the execution's description
MAX_VALUE = 1024
MAX_DESCRIPTION = 3072
# what a run cannot set, and why: the gate is the config's (pipeline_def.definition)
NOT_RUN_PARAMETERS = {
    "ModelApprovalStatus": (
        "not a run parameter: every model is registered PendingManualApproval and reaches Approved only through "
        "a recorded decision (POST /models/{version}/approve or Slack)"
    ),
    "InputDataUri": (
        "not a run parameter: a run trains and is judged on the stack's feature group (config feature_group)"
    ),
    **dict.fromkeys(
        ("ChampionModelUri", "ChampionVersion"),
        "not a run parameter: Evaluate reads the champion from the registry (the group's newest Approved version)",
    ),
}
# a run's data time comes from the request's data_as_of (checked there), not from its parameters
SET_BY_FIELDS = {DATA_AS_OF: "set by the request's data_as_of field, not as a parameter"}
STOPPABLE = {"Executing"}
RETRYABLE = {"Failed", "Stopped"}


class StartCommand(BaseModel):
    """A start request with who asked and the key that makes a retried request start one run."""

    model_config = ConfigDict(frozen=True)

    caller: str
    idempotency_key: str | None = None
    request: StartRunRequest
    # "ci" when the caller is the deploy workflow's role (control_plane.rest.source_of)
    source: Literal["api", "ci"] = "api"


def run_id_of(execution_arn: str) -> str:
    return execution_arn.rsplit("/", 1)[-1]


def token(*parts: str) -> str:
    """A ClientRequestToken (32-128 characters) that is the same whenever the parts are."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def check_overrides(
    declared: list[dict[str, Any]], overrides: dict[str, ParameterValue], reserved: dict[str, str] | None = None
) -> dict[str, str]:
    """Overrides as the strings SageMaker takes; every unknown, reserved, mistyped or weakening one is named at once."""
    by_name = {p["Name"]: p for p in declared}
    reserved = reserved or {}
    problems: list[str] = []
    values: dict[str, str] = {}
    for name, value in sorted(overrides.items()):
        parameter = by_name.get(name)
        if name in reserved:
            problems.append(f"parameters.{name}: {reserved[name]}")
            continue
        if parameter is None:
            open_names = ", ".join(sorted(set(by_name) - set(reserved)))
            reason = NOT_RUN_PARAMETERS.get(name, f"unknown parameter; the pipeline declares {open_names}")
            problems.append(f"parameters.{name}: {reason}")
            continue
        text, problem = _override(name, value, parameter)
        if problem:
            problems.append(f"parameters.{name}: {problem}")
        elif text is not None:
            values[name] = text
    if problems:
        raise InvalidRequest("; ".join(problems))
    return values


def _override(name: str, value: ParameterValue, parameter: dict[str, Any]) -> tuple[str | None, str | None]:
    """The value as SageMaker takes it, or what is wrong with it."""
    kind = parameter.get("Type", "String")
    text = _as_text(kind, value)
    if text is None:
        return None, f"expected {kind}, got {type(value).__name__} {value!r}"
    if utf16_length(text) > MAX_VALUE:
        return None, f"longer than {MAX_VALUE} characters"
    allowed = parameter.get("EnumValues")
    if allowed and text not in allowed:
        return None, f"{text!r} is not one of {', '.join(allowed)}"
    floor = parameter.get("DefaultValue")
    if name in RAISE_ONLY and floor is not None and float(text) < float(floor):
        return None, f"{text} is below the config's floor {floor}; a run may raise the bar, never lower it"
    return text, None


def _as_text(kind: str, value: ParameterValue) -> str | None:
    # bool is an int in Python; JSON true is never a number here
    if kind == "Integer" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == "Float" and isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return repr(float(value))
    if kind == "Boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "String" and isinstance(value, str):
        return value
    return None


def as_of_text(at: datetime) -> str:
    """A DataAsOf value: ISO 8601 in UTC with milliseconds, as the manifest writes times."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data_as_of(requested: str | None, now: datetime) -> str:
    """The run's DataAsOf: the request's time, or an earlier one it names; InvalidRequest naming data_as_of when
    that is not an ISO 8601 time with a UTC offset, or is later than now (data not written yet cannot be pinned).
    Choosing it cannot weaken the gate: see pipeline_def.definition's docstring."""
    if requested is None:
        return as_of_text(now)
    try:
        at = datetime.fromisoformat(requested)
    except ValueError:
        raise InvalidRequest(f"data_as_of: {requested!r} is not an ISO 8601 time (e.g. 2026-12-05T02:00:00Z)") from None
    if at.tzinfo is None:
        raise InvalidRequest(f"data_as_of: {requested!r} has no UTC offset (e.g. 2026-12-05T02:00:00Z)")
    if at > now:
        raise InvalidRequest(f"data_as_of: {requested} is in the future (now {as_of_text(now)})")
    return as_of_text(at)


def start_run(command: StartCommand, pipelines: PipelinesPort, audit: AuditPort) -> RunStarted:
    request = command.request
    declared = pipelines.declared_parameters()
    parameters = check_overrides(declared, request.parameters, SET_BY_FIELDS)
    parameters[DATA_AS_OF] = data_as_of(request.data_as_of, datetime.now(UTC))
    description = clip(
        f"{request.description or 'Started from the API'} (started by {command.caller})", MAX_DESCRIPTION
    )
    client_token = token(command.caller, command.idempotency_key) if command.idempotency_key else uuid.uuid4().hex
    arn = pipelines.start(parameters, display_name=request.display_name, description=description, token=client_token)
    record_start(audit, arn, parameters, actor=command.caller, source=command.source)
    return RunStarted(run_id=run_id_of(arn), execution_arn=arn, parameters=parameters)


def record_start(
    audit: AuditPort, arn: str, parameters: dict[str, str], *, actor: str, source: AuditSource, **details: str
) -> None:
    """A run's start in the audit trail, whoever started it: the record history.started_by reads back."""
    audit.record(
        AuditEntry(
            subject=f"run#{run_id_of(arn)}",
            action="start",
            actor=actor,
            source=source,
            at=datetime.now(UTC),
            details={"execution_arn": arn, **details, "parameters": json.dumps(parameters, sort_keys=True)},
        )
    )


def _summary(item: dict[str, Any]) -> RunSummary:
    return RunSummary(
        run_id=run_id_of(item["PipelineExecutionArn"]),
        execution_arn=item["PipelineExecutionArn"],
        status=item.get("PipelineExecutionStatus", "Unknown"),
        display_name=item.get("PipelineExecutionDisplayName"),
        started=item.get("StartTime"),
    )


def _service_token(value: object) -> bool:
    """Whether SageMaker would take `value` as a NextToken."""
    return (
        isinstance(value, str)
        and len(value) <= NEXT_TOKEN_MAX_LENGTH
        and re.fullmatch(NEXT_TOKEN_PATTERN, value) is not None
    )


def _decode_cursor(cursor: str | None) -> tuple[str | None, int]:
    if not cursor:
        return None, 0
    aws_token, skip = cursors.decode(cursor)
    # a JSON true is a Python int too: only a whole number counts
    if not (aws_token is None or _service_token(aws_token)) or type(skip) is not int or skip < 0:
        raise InvalidRequest(cursors.NOT_OURS)
    return aws_token, skip


def list_runs(pipelines: PipelinesPort, status: RunStatus | None, *, next_token: str | None, limit: int) -> RunPage:
    """Newest first. ListPipelineExecutions cannot filter by status, so this filters and keeps its own
    cursor (the service's token and how far into that page it got), never skipping or repeating a run."""
    aws_token, skip = _decode_cursor(next_token)
    runs: list[RunSummary] = []
    for _ in range(MAX_PAGES_PER_REQUEST):
        page, following = pipelines.list_executions(aws_token, AWS_PAGE)
        for index in range(skip, len(page)):
            if status and page[index].get("PipelineExecutionStatus") != status:
                continue
            runs.append(_summary(page[index]))
            if len(runs) == limit:
                if index + 1 < len(page):
                    return RunPage(runs=runs, next_token=cursors.encode(aws_token, index + 1))
                return RunPage(runs=runs, next_token=cursors.encode(following, 0) if following else None)
        if not following:
            return RunPage(runs=runs)
        aws_token, skip = following, 0
    return RunPage(runs=runs, next_token=cursors.encode(aws_token, 0))


def logs_url(region: str, job_arn: str) -> str | None:
    """The CloudWatch console page of a job's log streams."""
    kind, _, name = job_arn.rpartition(":")[2].partition("/")
    group = {"training-job": "/aws/sagemaker/TrainingJobs", "processing-job": "/aws/sagemaker/ProcessingJobs"}.get(kind)
    if group is None:
        return None
    # the console's fragment escapes '%' as '$25'
    fragment = quote(quote(group, safe=""), safe="").replace("%", "$")
    stream = quote(quote(f"?logStreamNameFilter={name}", safe=""), safe="").replace("%", "$")
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{fragment}/log-events{stream}"
    )


def _job_arn(metadata: dict[str, Any]) -> str | None:
    for kind in ("TrainingJob", "ProcessingJob", "TransformJob"):
        if "Arn" in metadata.get(kind, {}):
            return str(metadata[kind]["Arn"])
    return None


def _step(raw: dict[str, Any], region: str, job: JobUsage | None) -> Step:
    job_arn = _job_arn(raw.get("Metadata", {}))
    return Step(
        name=raw["StepName"],
        status=raw.get("StepStatus", "Unknown"),
        started=raw.get("StartTime"),
        ended=raw.get("EndTime"),
        attempts=raw.get("AttemptCount"),
        cache_hit="SourcePipelineExecutionArn" in raw.get("CacheHitResult", {}),
        failure_reason=raw.get("FailureReason"),
        job_arn=job_arn,
        logs_url=logs_url(region, job_arn) if job_arn else None,
        job=job,
    )


@dataclass(frozen=True, kw_only=True)
class RunReaders:
    """What GET /runs/{id} reads besides the pipeline: the registry, the audit trail, the reports and links."""

    registry: RegistryPort
    audit: AuditPort
    read_report: ReportReader
    presigner: ArtefactPort
    region: str
    # the training job's epoch lines; None: no progress is read
    epochs: EpochEventReader | None = None


def dataset_summary(report: dict[str, Any] | None) -> DatasetSummary | None:
    """The figures of Preprocess's dataset_report.json that say what a run trained on, and what it missed."""
    if report is None:
        return None
    pending = report.get("not_in_offline_store") or {}
    splits = report.get("splits") or {}
    return DatasetSummary(
        images=report.get("images"),
        splits={name: int(split.get("images", 0)) for name, split in splits.items()},
        dropped=len(report.get("dropped") or []),
        not_in_offline_store=pending.get("approved_records"),
        as_of=report.get("as_of"),
        manifest_sha256=(report.get("manifest") or {}).get("sha256"),
        written_after_as_of=report.get("written_after_as_of"),
    )


def output_uri(job: dict[str, Any], output_name: str) -> str | None:
    """Where a described processing job writes its output `output_name`."""
    for output in job.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if output["OutputName"] == output_name and "S3Output" in output:
            return str(output["S3Output"]["S3Uri"])
    return None


def describe_jobs(raw_steps: list[dict[str, Any]], pipelines: PipelinesPort) -> dict[str, dict[str, Any]]:
    """Each job step's job as DescribeTrainingJob or DescribeProcessingJob answers, by step name."""
    jobs: dict[str, dict[str, Any]] = {}
    for raw in raw_steps:
        metadata = raw.get("Metadata", {})
        if "Arn" in metadata.get("TrainingJob", {}):
            jobs[raw["StepName"]] = pipelines.training_job(metadata["TrainingJob"]["Arn"].rsplit("/", 1)[-1])
        elif "Arn" in metadata.get("ProcessingJob", {}):
            jobs[raw["StepName"]] = pipelines.processing_job(metadata["ProcessingJob"]["Arn"].rsplit("/", 1)[-1])
    return jobs


def job_usages(jobs: dict[str, dict[str, Any]], prices: PriceTable | None) -> dict[str, JobUsage]:
    return {
        step: costs.training_usage(job, prices) if "TrainingJobName" in job else costs.processing_usage(job, prices)
        for step, job in jobs.items()
    }


def _succeeded(raw_steps: list[dict[str, Any]], jobs: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The job of step `name` when that step succeeded."""
    ok = any(raw.get("StepName") == name and raw.get("StepStatus") == "Succeeded" for raw in raw_steps)
    return jobs.get(name) if ok else None


def _report(job: dict[str, Any] | None, output: str, *, file: str, readers: RunReaders) -> dict[str, Any] | None:
    folder = output_uri(job, output) if job else None
    return readers.read_report(f"{folder.rstrip('/')}/{file}") if folder else None


def _model(raw_steps: list[dict[str, Any]], readers: RunReaders) -> ModelSummary | None:
    for raw in raw_steps:
        registered = raw.get("Metadata", {}).get("RegisterModel", {})
        if "Arn" in registered:
            return model_summary(readers.registry.describe_arn(registered["Arn"]))
    return None


def _progress(
    raw_steps: list[dict[str, Any]], jobs: dict[str, dict[str, Any]], read: EpochEventReader | None
) -> TrainProgress | None:
    """The executing Train step's latest epoch, with the total from the job's `epochs` hyperparameter (the run's
    NumEpochs, or the definition's default)."""
    job = jobs.get("Train")
    executing = any(raw.get("StepName") == "Train" and raw.get("StepStatus") == "Executing" for raw in raw_steps)
    if read is None or not job or not executing or not job.get("TrainingStartTime"):
        return None
    started = job["TrainingStartTime"]
    total = str(job.get("HyperParameters", {}).get("epochs", ""))
    found = progress.train_progress(
        read(job["TrainingJobName"], started), started=started, total=int(total) if total.isdigit() else None
    )
    return TrainProgress(**found) if found else None


def get_run(
    run_id: str, pipelines: PipelinesPort, readers: RunReaders, *, prices: PriceTable | None = None
) -> RunDetail:
    arn = pipelines.execution_arn(run_id)
    execution = pipelines.describe_execution(arn)
    raw_steps = pipelines.steps(arn)
    jobs = describe_jobs(raw_steps, pipelines)
    usages = job_usages(jobs, prices)
    train = _succeeded(raw_steps, jobs, "Train") or {}
    evaluate = _succeeded(raw_steps, jobs, "Evaluate")
    evaluation = _report(evaluate, "evaluation", file=EVALUATION_FILE, readers=readers)
    return RunDetail(
        run_id=run_id,
        execution_arn=arn,
        status=execution.get("PipelineExecutionStatus", "Unknown"),
        display_name=execution.get("PipelineExecutionDisplayName"),
        description=execution.get("PipelineExecutionDescription"),
        started=execution.get("CreationTime"),
        last_modified=execution.get("LastModifiedTime"),
        failure_reason=execution.get("FailureReason"),
        parameters=pipelines.execution_parameters(arn),
        steps=[_step(raw, readers.region, usages.get(raw["StepName"])) for raw in raw_steps],
        training_metrics={m["MetricName"]: float(m["Value"]) for m in train.get("FinalMetricDataList", [])},
        evaluation=evaluation,
        dataset=dataset_summary(
            _report(_succeeded(raw_steps, jobs, "Preprocess"), "report", file=DATASET_REPORT, readers=readers)
        ),
        data_changes=data_changes.from_evaluation(evaluation),
        model=_model(raw_steps, readers),
        started_by=history.started_by(readers.audit, run_id),
        artefacts=artefacts.links(
            output_uri(evaluate, "evaluation") if evaluate else None,
            train.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
            readers.presigner,
        ),
        cost=costs.run_cost(list(usages.values()), prices),
        progress=_progress(raw_steps, jobs, readers.epochs),
    )


def stop_run(run_id: str, caller: str, *, pipelines: PipelinesPort, audit: AuditPort) -> RunSummary:
    return _transition(run_id, caller, pipelines=pipelines, audit=audit, action="stop", allowed=STOPPABLE)


def retry_run(run_id: str, caller: str, *, pipelines: PipelinesPort, audit: AuditPort) -> RunSummary:
    return _transition(run_id, caller, pipelines=pipelines, audit=audit, action="retry", allowed=RETRYABLE)


def _transition(
    run_id: str, caller: str, *, pipelines: PipelinesPort, audit: AuditPort, action: str, allowed: set[str]
) -> RunSummary:
    arn = pipelines.execution_arn(run_id)
    execution = pipelines.describe_execution(arn)
    status = execution.get("PipelineExecutionStatus", "Unknown")
    if status not in allowed:
        raise Conflict(f"run {run_id} is {status}; only a run that is {' or '.join(sorted(allowed))} can {action}")
    # the same request retried against the same state asks once
    client_token = token(arn, action, str(execution.get("LastModifiedTime", "")))
    if action == "stop":
        pipelines.stop(arn, client_token)
    else:
        pipelines.retry(arn, client_token)
    audit.record(AuditEntry(subject=f"run#{run_id}", action=action, actor=caller, source="api", at=datetime.now(UTC)))
    after = pipelines.describe_execution(arn)
    return _summary({**after, "PipelineExecutionArn": arn, "StartTime": after.get("CreationTime")})

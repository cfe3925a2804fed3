"""What `notify` posts: a model waiting for approval, with its evidence and picture, or a failed run with its
failing step and reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from control_plane import approval_request, costs, history, runs, slack_messages
from control_plane.approval_request import Evidence
from control_plane.artefacts import folder_of
from control_plane.costs import PriceTable
from control_plane.errors import NotFound, UploadFailed
from control_plane.models import ModelDetail, Origin
from control_plane.ports import AuditPort, ObjectReader, PipelinesPort, PosterPort, RegistryPort, ReportReader
from control_plane.registry import model_detail
from control_plane.runs import run_id_of
from pipeline_def.names import PREDICTIONS_FILE, dataset_report_beside


class Notice(BaseModel):
    """What happened to what: the de-duplication key of a notification (SageMaker may say it twice)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["model-pending", "run-failed"]
    arn: str
    status: str


class Posted(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    arn: str
    ts: str


@dataclass(frozen=True, kw_only=True)
class Sources:
    """Where notify reads the evidence: the registry, the pipeline, S3, and the API's address for links."""

    registry: RegistryPort
    pipelines: PipelinesPort
    read_report: ReportReader
    read_object: ObjectReader
    api_url: str | None = None
    # who started the run, for the approval request (None: not shown)
    audit: AuditPort | None = None
    # the config's price table, for the run's estimated cost in the approval request (None: not shown)
    prices: Callable[[], PriceTable | None] | None = None


def evidence(detail: ModelDetail, sources: Sources, poster: PosterPort) -> Evidence:
    """The model's evaluation and the run's link; its predictions picture uploaded to Slack. What is missing is
    said in the message, never a reason not to post it."""
    evaluation = sources.read_report(detail.evaluation_uri) if detail.evaluation_uri else None
    dataset = sources.read_report(dataset_report_beside(detail.evaluation_uri)) if detail.evaluation_uri else None
    run_url = f"{sources.api_url.rstrip('/')}/runs/{detail.run_id}" if sources.api_url and detail.run_id else None
    found = Evidence(evaluation=evaluation, run_url=run_url, started_by=_starter(detail, sources), dataset=dataset)
    if not detail.evaluation_uri:
        return replace(found, picture_problem="no predictions picture: the package names no evaluation")
    picture = sources.read_object(f"{folder_of(detail.evaluation_uri)}/{PREDICTIONS_FILE}")
    if picture is None:
        return replace(found, picture_problem="no predictions picture: the evaluation wrote none")
    name = f"{sources.registry.group}-v{detail.version}-{PREDICTIONS_FILE}"
    try:
        file_id = poster.upload(name, picture, f"{sources.registry.group} v{detail.version}: test predictions")
    except UploadFailed as error:  # the request matters more than its picture
        return replace(found, picture_problem=f"the predictions picture was not uploaded: {error.message}")
    return replace(found, picture_file_id=file_id)


def run_cost(execution_arn: str | None, sources: Sources) -> str | None:
    """The run's estimated cost in one line, from its jobs as SageMaker describes them (None: not asked for)."""
    if sources.prices is None or not execution_arn:
        return None
    try:
        jobs = runs.describe_jobs(sources.pipelines.steps(execution_arn), sources.pipelines)
    except NotFound as error:  # the request matters more than its cost
        return f"estimated cost unknown ({error.message})"
    prices = sources.prices()
    return costs.cost_line(costs.run_cost(list(runs.job_usages(jobs, prices).values()), prices))


def _starter(detail: ModelDetail, sources: Sources) -> Origin | None:
    if sources.audit is None or not detail.run_id:
        return None
    return history.started_by(sources.audit, detail.run_id)


def message_for(notice: Notice, sources: Sources, poster: PosterPort) -> tuple[str, list[dict[str, Any]]]:
    registry, pipelines = sources.registry, sources.pipelines
    if notice.kind == "model-pending":
        package = registry.describe_arn(notice.arn)
        threshold = package.get("CustomerMetadataProperties", {}).get("MapThreshold")
        detail = model_detail(package)
        execution = package.get("CustomerMetadataProperties", {}).get("PipelineExecutionArn")
        found = replace(evidence(detail, sources, poster), cost=run_cost(execution, sources))
        return approval_request.model_registered(registry.group, detail, threshold=threshold, evidence=found)
    failed = [s for s in pipelines.steps(notice.arn) if s.get("StepStatus") == "Failed"]
    if failed:
        return slack_messages.run_failed(
            pipelines.name, run_id_of(notice.arn), step=failed[0]["StepName"], reason=failed[0].get("FailureReason")
        )
    execution = pipelines.describe_execution(notice.arn)
    return slack_messages.run_failed(
        pipelines.name, run_id_of(notice.arn), step=None, reason=execution.get("FailureReason")
    )


def notify(notice: Notice, sources: Sources, poster: PosterPort, *, channel: str) -> Posted:
    """The picture is uploaded before the message is posted: a retry after a failed upload posts once."""
    text, blocks = message_for(notice, sources, poster)
    return Posted(kind=notice.kind, arn=notice.arn, ts=poster.post(channel, text, blocks))

"""The model registry: list and show model packages (with their history), approve or reject them (API or Slack)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from control_plane import artefacts, duties, history
from control_plane.errors import NotFound
from control_plane.models import (
    AuditEntry,
    DatasetRef,
    Decision,
    DecisionResult,
    ModelDetail,
    ModelPage,
    ModelSummary,
)
from control_plane.ports import ArtefactPort, AuditPort, PipelinesPort, RegistryPort
from control_plane.service_text import clip

STATUS_OF: dict[Decision, str] = {"approve": "Approved", "reject": "Rejected"}
MAX_DESCRIPTION = 1024


def _map(metadata: dict[str, str]) -> float | None:
    try:
        return float(metadata["TestMap"])
    except (KeyError, ValueError):
        return None


def model_summary(package: dict[str, Any]) -> ModelSummary:
    metadata = package.get("CustomerMetadataProperties", {})
    return ModelSummary(
        version=package["ModelPackageVersion"],
        arn=package["ModelPackageArn"],
        approval_status=package.get("ModelApprovalStatus", "Unknown"),
        created=package.get("CreationTime"),
        map=_map(metadata),
        run_id=duties.run_of(package),
    )


def dataset_of(metadata: dict[str, str]) -> DatasetRef | None:
    """The data the model learned from, from the metadata Register wrote (pipeline_def.definition's
    DATASET_METADATA); None for a model registered before its runs pinned their data."""
    if "DataManifest" not in metadata:
        return None
    return DatasetRef(
        as_of=metadata.get("DataAsOf"),
        manifest_uri=metadata["DataManifest"],
        manifest_sha256=metadata.get("DataManifestSha256"),
    )


def model_detail(package: dict[str, Any]) -> ModelDetail:
    containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
    statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return ModelDetail(
        **model_summary(package).model_dump(),
        approval_description=package.get("ApprovalDescription"),
        image_uri=containers[0].get("Image"),
        model_data_url=containers[0].get("ModelDataUrl"),
        evaluation_uri=statistics.get("S3Uri"),
        metadata=package.get("CustomerMetadataProperties", {}),
        dataset=dataset_of(package.get("CustomerMetadataProperties", {})),
    )


def list_models(registry: RegistryPort, status: str | None, *, next_token: str | None, limit: int) -> ModelPage:
    """Newest first, with each package's test mAP (it lives in the package, not in the list summary)."""
    summaries, following = registry.list_packages(status, next_token, limit)
    models = [model_summary(registry.describe_arn(s["ModelPackageArn"])) for s in summaries]
    return ModelPage(models=models, next_token=following)


def get_model(
    registry: RegistryPort, version: int, *, audit: AuditPort, pipelines: PipelinesPort, presigner: ArtefactPort
) -> ModelDetail:
    """A version with its decisions, the run that trained it (and who started that) and links to its results."""
    detail = model_detail(registry.describe(version))
    run_status = None
    if detail.run_id:
        try:
            execution = pipelines.describe_execution(pipelines.execution_arn(detail.run_id))
            run_status = execution.get("PipelineExecutionStatus")
        except NotFound:  # a run of a pipeline since deleted: the package outlives it
            run_status = None
    evaluation = artefacts.folder_of(detail.evaluation_uri) if detail.evaluation_uri else None
    return detail.model_copy(
        update={
            "decisions": history.decisions(audit, registry.group, version),
            "run_status": run_status,
            "started_by": history.started_by(audit, detail.run_id) if detail.run_id else None,
            "artefacts": artefacts.links(evaluation, detail.model_data_url, presigner),
        }
    )


class DecideCommand(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    decision: Decision
    actor: str
    comment: str
    source: Literal["api", "slack", "ci"]
    # model_registry.four_eyes, for a decision through the API (Slack's are governed by slack.approvers)
    four_eyes: bool = False


def _failed(decision: AuditEntry, error: str) -> AuditEntry:
    """The entry that says a recorded decision was not made: SageMaker refused or lost the update."""
    details = {"decision": decision.action, "decided_at": history.stamp(decision), "error": error}
    return decision.model_copy(update={"action": history.FAILED, "at": datetime.now(UTC), "details": details})


def decide(command: DecideCommand, registry: RegistryPort, audit: AuditPort) -> DecisionResult:
    """Approve or reject one version. Approving an approved package changes nothing; any other decision,
    including rejecting an approved package, updates it and is audited.

    The audit record comes first: SageMaker's event of the change may reach its consumers before this function
    returns, and they tell the control plane's decisions from decisions made in SageMaker directly by this record
    (control_plane.outside_decisions). An update that then fails is recorded as failed, and raised."""
    package = registry.describe(command.version)
    current = package.get("ModelApprovalStatus", "Unknown")
    wanted = STATUS_OF[command.decision]
    if command.decision == "approve":
        duties.check_not_ci(command.source)
        duties.check_four_eyes(package, command.actor, "approve", audit=audit, enabled=command.four_eyes)
    if command.decision == "approve" and current == "Approved":
        return DecisionResult(
            version=command.version,
            approval_status=current,
            changed=False,
            approval_description=package.get("ApprovalDescription"),
        )
    description = clip(f"{wanted} by {command.actor} via {command.source}: {command.comment}", MAX_DESCRIPTION)
    decision = AuditEntry(
        subject=f"model#{registry.group}/{command.version}",
        action=command.decision,
        actor=command.actor,
        source=command.source,
        at=datetime.now(UTC),
        details={"from": current, "to": wanted, "comment": command.comment, "arn": package["ModelPackageArn"]},
    )
    audit.record(decision)
    try:
        registry.set_approval(package["ModelPackageArn"], wanted, description)
    except Exception as error:
        audit.record(_failed(decision, type(error).__name__))
        raise
    return DecisionResult(
        version=command.version, approval_status=wanted, changed=True, approval_description=description
    )

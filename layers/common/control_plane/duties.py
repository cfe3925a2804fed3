"""Separation of duties through the API: the identity that started a run may not approve or deploy the model that
run produced (`model_registry.four_eyes`), and the deploy workflow's role may never approve. Slack approvals are
governed by the Slack allow-list instead (`slack.approvers`); their request names who started the run."""

from __future__ import annotations

from typing import Any

from control_plane import history
from control_plane.errors import Conflict, Forbidden
from control_plane.ports import AuditPort


def run_of(package: dict[str, Any]) -> str | None:
    """The run that produced a package: the execution SageMaker recorded as its creator when it was registered
    (MetadataProperties, which no update changes), else the control plane's own metadata."""
    execution = package.get("MetadataProperties", {}).get("GeneratedBy") or package.get(
        "CustomerMetadataProperties", {}
    ).get("PipelineExecutionArn")
    return str(execution).rsplit("/", 1)[-1] if execution else None


def check_four_eyes(package: dict[str, Any], actor: str, action: str, *, audit: AuditPort, enabled: bool) -> None:
    """Refuse (409) when `actor` started the run that produced `package` and the rule is on."""
    if not enabled:
        return
    run_id = run_of(package)
    origin = history.started_by(audit, run_id) if run_id else None
    if origin is not None and origin.actor == actor:
        version = package.get("ModelPackageVersion")
        raise Conflict(
            f"model_registry.four_eyes: {actor} started run {run_id}, which produced version {version}; "
            f"another identity must {action} it"
        )


def check_not_ci(source: str) -> None:
    """The deploy workflow's role starts runs; a person decides which model is approved."""
    if source == "ci":
        raise Forbidden("the deploy workflow's role (CiRoleArn) may start runs but never approve a model")

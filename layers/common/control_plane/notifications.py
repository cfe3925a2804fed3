"""What `notify` posts: a model waiting for approval, or a failed run with its failing step and reason."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from control_plane import slack_messages
from control_plane.ports import PipelinesPort, RegistryPort
from control_plane.registry import model_summary
from control_plane.runs import run_id_of


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


class Poster(Protocol):
    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str: ...


def message_for(notice: Notice, registry: RegistryPort, pipelines: PipelinesPort) -> tuple[str, list[dict[str, Any]]]:
    if notice.kind == "model-pending":
        package = registry.describe_arn(notice.arn)
        threshold = package.get("CustomerMetadataProperties", {}).get("MapThreshold")
        return slack_messages.model_registered(registry.group, model_summary(package), threshold)
    failed = [s for s in pipelines.steps(notice.arn) if s.get("StepStatus") == "Failed"]
    if failed:
        return slack_messages.run_failed(
            pipelines.name, run_id_of(notice.arn), failed[0]["StepName"], failed[0].get("FailureReason")
        )
    execution = pipelines.describe_execution(notice.arn)
    return slack_messages.run_failed(pipelines.name, run_id_of(notice.arn), None, execution.get("FailureReason"))


def notify(notice: Notice, registry: RegistryPort, pipelines: PipelinesPort, poster: Poster, channel: str) -> Posted:
    text, blocks = message_for(notice, registry, pipelines)
    return Posted(kind=notice.kind, arn=notice.arn, ts=poster.post(channel, text, blocks))

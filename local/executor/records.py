"""What the executor keeps of each execution and step, and the definition's step graph."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local.executor.expressions import references

TERMINAL = {"Succeeded", "Failed", "Stopped"}


class ServiceError(Exception):
    """An API error as SageMaker names it (ValidationException, ResourceNotFound, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class StepRun:
    name: str
    type: str
    description: str = ""
    status: str = "Starting"
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    attempts: int = 0
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        item = {
            "StepName": self.name,
            "StepDescription": self.description,
            "StartTime": self.started,
            "EndTime": self.ended,
            "StepStatus": self.status,
            "AttemptCount": self.attempts,
            "FailureReason": self.failure_reason,
            "Metadata": self.metadata,
        }
        return {k: v for k, v in item.items() if v not in (None, "")}


@dataclass
class Execution:
    arn: str
    pipeline_name: str
    pipeline_arn: str
    definition: dict[str, Any]
    parameters: dict[str, Any]
    display_name: str
    description: str
    token: str | None
    status: str = "Executing"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    failure_reason: str | None = None
    steps: dict[str, StepRun] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def describe(self) -> dict[str, Any]:
        described = {
            "PipelineArn": self.pipeline_arn,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionDescription": self.description,
            "FailureReason": self.failure_reason,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        return {k: v for k, v in described.items() if v is not None}

    def summary(self) -> dict[str, Any]:
        item = {
            "PipelineExecutionArn": self.arn,
            "StartTime": self.created,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionDescription": self.description,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineExecutionFailureReason": self.failure_reason,
        }
        return {k: v for k, v in item.items() if v is not None}


def flatten(definition: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str | None, bool | None]]:
    """Every step by name, with the Condition step that owns it and the branch (True: IfSteps) it sits in."""
    found: dict[str, tuple[dict[str, Any], str | None, bool | None]] = {}

    def visit(steps: list[dict[str, Any]], parent: str | None, branch: bool | None) -> None:
        for step in steps:
            found[step["Name"]] = (step, parent, branch)
            if step["Type"] == "Condition":
                visit(step["Arguments"].get("IfSteps", []), step["Name"], True)
                visit(step["Arguments"].get("ElseSteps", []), step["Name"], False)

    visit(definition["Steps"], None, None)
    return found


def dependencies(step: dict[str, Any]) -> set[str]:
    arguments = {k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")}
    return set(step.get("DependsOn", [])) | references(arguments)


def typed(declared: dict[str, Any], value: str) -> Any:
    kind = declared.get("Type", "String")
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            return {"true": True, "false": False}[value.lower()]
    except (ValueError, KeyError):
        raise ServiceError("ValidationException", f"Parameter {declared['Name']}: {value!r} is not {kind}") from None
    return value

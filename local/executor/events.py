"""SageMaker's EventBridge events for executions, steps and model packages, as SageMaker shapes them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from local.executor.records import TERMINAL, Execution, StepRun

PIPELINE_SOURCE = "aws.sagemaker"
EXECUTION_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
PACKAGE_CHANGE = "SageMaker Model Package State Change"


class EventPublisher:
    """Puts the events on the emulated EventBridge (`events` is a boto3 client)."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def execution(self, execution: Execution, previous: str | None) -> None:
        detail = {
            "pipelineExecutionDisplayName": execution.display_name,
            "currentPipelineExecutionStatus": execution.status,
            "previousPipelineExecutionStatus": previous,
            "executionStartTime": execution.created.isoformat(),
            "pipelineArn": execution.pipeline_arn,
            "pipelineExecutionArn": execution.arn,
        }
        if execution.status in TERMINAL:
            detail["executionEndTime"] = execution.modified.isoformat()
        self._put(EXECUTION_CHANGE, [execution.pipeline_arn, execution.arn], detail)

    def step(self, execution: Execution, run: StepRun, previous: str | None) -> None:
        detail = {
            "metadata": run.metadata,
            "stepStartTime": run.started.isoformat(),
            "stepEndTime": run.ended.isoformat() if run.ended else None,
            "stepName": run.name,
            "stepType": run.type,
            "previousStepStatus": previous,
            "currentStepStatus": run.status,
            "pipelineArn": execution.pipeline_arn,
            "pipelineExecutionArn": execution.arn,
            "failureReason": run.failure_reason,
        }
        self._put(STEP_CHANGE, [execution.pipeline_arn, execution.arn], {k: v for k, v in detail.items() if v})

    def package(self, package: dict[str, Any]) -> None:
        detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in package.items()}
        detail.pop("ResponseMetadata", None)
        self._put(PACKAGE_CHANGE, [package["ModelPackageArn"]], detail)

    def _put(self, detail_type: str, resources: list[str], detail: dict[str, Any]) -> None:
        self.events.put_events(
            Entries=[
                {
                    "Source": PIPELINE_SOURCE,
                    "DetailType": detail_type,
                    "Resources": resources,
                    "Detail": json.dumps(detail, default=str),
                }
            ]
        )

"""SageMaker Pipelines and the model registry, behind the small interfaces the use cases need."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from control_plane.aws.clients import LazyClient
from control_plane.aws.errors import not_found_as, token_refused
from control_plane.errors import Conflict, NotFound

if TYPE_CHECKING:
    from pipeline_def.config import PipelineConfig
    from pipeline_def.deploy import Plan


def _no_such_pipeline(name: str) -> AbstractContextManager[None]:
    """A call on a pipeline that is not there: NotFound, naming it."""
    return not_found_as(f"pipeline {name} does not exist")


class Pipelines:
    """One pipeline and its executions."""

    _sm = LazyClient("sagemaker")

    def __init__(self, pipeline_name: str, sagemaker: Any = None) -> None:
        self.name = pipeline_name
        self._client = sagemaker

    @cached_property
    def arn(self) -> str:
        return str(self._describe()["PipelineArn"])

    def execution_arn(self, run_id: str) -> str:
        return f"{self.arn}/execution/{run_id}"

    def declared_parameters(self) -> list[dict[str, Any]]:
        """The `Parameters` of the deployed definition: what a run may override, with types and enums."""
        return list(json.loads(self._describe()["PipelineDefinition"]).get("Parameters", []))

    def definition(self, execution_arn: str | None = None) -> dict[str, Any]:
        """The deployed definition (what the next run runs), or the one a run ran (its ARN)."""
        if execution_arn is None:
            text = self._describe()["PipelineDefinition"]
        else:
            with not_found_as(f"run {execution_arn.rsplit('/', 1)[-1]} does not exist"):
                text = self._sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution_arn)[
                    "PipelineDefinition"
                ]
        return dict(json.loads(text))

    def _describe(self) -> dict[str, Any]:
        with _no_such_pipeline(self.name):
            described: dict[str, Any] = self._sm.describe_pipeline(PipelineName=self.name)
        return described

    def start(self, parameters: dict[str, str], *, display_name: str | None, description: str, token: str) -> str:
        request: dict[str, Any] = {
            "PipelineName": self.name,
            "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(parameters.items())],
            "PipelineExecutionDescription": description,
            "ClientRequestToken": token,
        }
        if display_name:
            request["PipelineExecutionDisplayName"] = display_name
        return str(self._sm.start_pipeline_execution(**request)["PipelineExecutionArn"])

    def list_executions(self, next_token: str | None, page_size: int) -> tuple[list[dict[str, Any]], str | None]:
        request: dict[str, Any] = {
            "PipelineName": self.name,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": page_size,
        }
        if next_token:
            request["NextToken"] = next_token
        with _no_such_pipeline(self.name), token_refused(next_token):
            page = self._sm.list_pipeline_executions(**request)
        return list(page.get("PipelineExecutionSummaries", [])), page.get("NextToken")

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        with not_found_as(f"run {execution_arn.rsplit('/', 1)[-1]} does not exist"):
            return dict(self._sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn))

    def execution_parameters(self, execution_arn: str) -> dict[str, str]:
        pages = self._sm.get_paginator("list_pipeline_parameters_for_execution").paginate(
            PipelineExecutionArn=execution_arn
        )
        return {p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters", [])}

    def steps(self, execution_arn: str) -> list[dict[str, Any]]:
        pages = self._sm.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=execution_arn, SortOrder="Ascending"
        )
        return [step for page in pages for step in page.get("PipelineExecutionSteps", [])]

    def stop(self, execution_arn: str, token: str) -> None:
        self._sm.stop_pipeline_execution(PipelineExecutionArn=execution_arn, ClientRequestToken=token)

    def retry(self, execution_arn: str, token: str) -> None:
        self._sm.retry_pipeline_execution(PipelineExecutionArn=execution_arn, ClientRequestToken=token)

    def training_job(self, job_name: str) -> dict[str, Any]:
        with not_found_as(f"training job {job_name} does not exist"):
            return dict(self._sm.describe_training_job(TrainingJobName=job_name))

    def processing_job(self, job_name: str) -> dict[str, Any]:
        with not_found_as(f"processing job {job_name} does not exist"):
            return dict(self._sm.describe_processing_job(ProcessingJobName=job_name))


class Registry:
    """The model package group the pipeline registers into."""

    _sm = LazyClient("sagemaker")

    def __init__(self, group_name: str, sagemaker: Any = None) -> None:
        self.group = group_name
        self._client = sagemaker

    @cached_property
    def group_arn(self) -> str:
        with not_found_as(f"model package group {self.group} does not exist"):
            described = self._sm.describe_model_package_group(ModelPackageGroupName=self.group)
        return str(described["ModelPackageGroupArn"])

    def package_arn(self, version: int) -> str:
        # arn:...:model-package-group/<group> -> arn:...:model-package/<group>/<version>
        return f"{self.group_arn.replace(':model-package-group/', ':model-package/')}/{version}"

    def list_packages(
        self, status: str | None, next_token: str | None, page_size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        request: dict[str, Any] = {
            "ModelPackageGroupName": self.group,
            "ModelPackageType": "Versioned",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": page_size,
        }
        if status:
            request["ModelApprovalStatus"] = status
        if next_token:
            request["NextToken"] = next_token
        with token_refused(next_token):
            page = self._sm.list_model_packages(**request)
        return list(page.get("ModelPackageSummaryList", [])), page.get("NextToken")

    def describe(self, version: int) -> dict[str, Any]:
        with not_found_as(f"model version {version} does not exist in {self.group}"):
            return dict(self._sm.describe_model_package(ModelPackageName=self.package_arn(version)))

    def describe_arn(self, arn: str) -> dict[str, Any]:
        with not_found_as(f"model package {arn} does not exist"):
            return dict(self._sm.describe_model_package(ModelPackageName=arn))

    def set_approval(self, arn: str, status: str, description: str) -> None:
        self._sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description)


class PipelineDeployer:
    """Creates, updates (only on change) and deletes the pipeline; see pipeline_def.deploy."""

    _sm = LazyClient("sagemaker")

    def __init__(self, sagemaker: Any = None) -> None:
        self._client = sagemaker

    def upsert(self, config: PipelineConfig, request_id: str | None = None) -> Plan:
        from pipeline_def import deploy  # only this function builds definitions; the API never imports it

        return deploy.upsert(self._sm, config, request_id)

    def stop_executions(self, name: str) -> list[str]:
        """Stop the pipeline's executing runs (their jobs would go on, billed, after the pipeline is gone)."""
        running = self._executions(name, {"Executing"})
        for arn in running:
            self._sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=uuid.uuid4().hex)
        return running

    def delete(self, name: str, *, wait_seconds: float = 0, poll_seconds: float = 5) -> bool:
        """Stop its running executions, wait up to `wait_seconds` until none is left Stopping, then delete the
        pipeline; False when there was none to delete. SageMaker deletes a pipeline only when no run of it is
        running (ConflictException), and a run stays Stopping until its current job has stopped: a training job
        is given 120 s to save after its SIGTERM. Conflict, naming the runs, when they outlast the wait."""
        try:
            with _no_such_pipeline(name):
                self.stop_executions(name)
                self._wait_stopped(name, wait_seconds, poll_seconds)
                # a new token each time: a fixed one would make deleting a re-created pipeline a no-op
                self._sm.delete_pipeline(PipelineName=name, ClientRequestToken=uuid.uuid4().hex)
        except NotFound:
            return False
        return True

    def _executions(self, name: str, statuses: set[str]) -> list[str]:
        pages = self._sm.get_paginator("list_pipeline_executions").paginate(PipelineName=name)
        return [
            e["PipelineExecutionArn"]
            for page in pages
            for e in page.get("PipelineExecutionSummaries", [])
            if e.get("PipelineExecutionStatus") in statuses
        ]

    def _wait_stopped(self, name: str, wait_seconds: float, poll_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while unstopped := self._executions(name, {"Executing", "Stopping"}):
            if time.monotonic() >= deadline:
                raise Conflict(
                    f"pipeline {name} still has runs that have not stopped after {wait_seconds:.0f} s "
                    f"({', '.join(unstopped)}): SageMaker deletes a pipeline only when none is running; "
                    "delete again once they show Stopped"
                )
            time.sleep(poll_seconds)

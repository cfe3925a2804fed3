"""SageMaker's API on loopback: pipeline executions and their jobs are served by the executor; every other
operation (pipelines, the model registry, feature groups) is passed to moto unchanged.

boto3 reaches it through `AWS_ENDPOINT_URL_SAGEMAKER`; SageMaker speaks JSON over POST with the operation in
`X-Amz-Target: SageMaker.<Operation>`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from local import constraints, quotas
from local.executor.engine import TERMINAL, Executor, ServiceError
from local.loopback import Loopback, Served

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SAGEMAKER"
PAGE = 50


def _page(items: list[dict[str, Any]], request: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(request.get("NextToken") or 0)
    size = int(request.get("MaxResults") or PAGE)
    answer: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        answer["NextToken"] = str(start + size)
    return answer


class SageMakerApi:
    """The operations the executor answers, by name."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "StartPipelineExecution": self.start,
            "DescribePipelineExecution": lambda r: self.executor.execution(r["PipelineExecutionArn"]).describe(),
            "ListPipelineExecutions": self.list_executions,
            "ListPipelineExecutionSteps": self.list_steps,
            "ListPipelineParametersForExecution": self.list_parameters,
            "DescribePipelineDefinitionForExecution": self.definition,
            "StopPipelineExecution": self.stop,
            "RetryPipelineExecution": self.retry,
        }

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"PipelineExecutionArn": self.executor.start(request)}

    def list_executions(self, request: dict[str, Any]) -> dict[str, Any]:
        ascending = request.get("SortOrder") == "Ascending"
        items = [e.summary() for e in self.executor.executions_of(request["PipelineName"], ascending)]
        return _page(items, request, "PipelineExecutionSummaries")

    def list_steps(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.executor.execution(request["PipelineExecutionArn"])
        runs = sorted(
            execution.steps.values(), key=lambda s: s.started, reverse=request.get("SortOrder") != "Ascending"
        )
        return _page([s.summary() for s in runs], request, "PipelineExecutionSteps")

    def list_parameters(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.executor.execution(request["PipelineExecutionArn"])
        items = [{"Name": k, "Value": _text(v)} for k, v in sorted(execution.parameters.items())]
        return _page(items, request, "PipelineParameters")

    def definition(self, request: dict[str, Any]) -> dict[str, Any]:
        execution = self.executor.execution(request["PipelineExecutionArn"])
        return {"PipelineDefinition": json.dumps(execution.definition), "CreationTime": execution.created}

    def stop(self, request: dict[str, Any]) -> dict[str, Any]:
        self.executor.stop(request["PipelineExecutionArn"])
        return {"PipelineExecutionArn": request["PipelineExecutionArn"]}

    def retry(self, request: dict[str, Any]) -> dict[str, Any]:
        self.executor.retry(request["PipelineExecutionArn"])
        return {"PipelineExecutionArn": request["PipelineExecutionArn"]}

    def refuse_busy_delete(self, request: dict[str, Any]) -> None:
        """DeletePipeline is SageMaker's (moto's) to answer, but not while a run of the pipeline has not stopped:
        "Deletes a pipeline if there are no running instances of the pipeline" (the API reference; the error the
        SDKs list for it is ConflictException)."""
        busy = [e for e in self.executor.executions_of(request["PipelineName"]) if e.status not in TERMINAL]
        if busy:
            raise ServiceError(
                "ConflictException",
                f"Pipeline {request['PipelineName']} has executions that are not stopped "
                f"({', '.join(f'{e.arn} is {e.status}' for e in busy)}): stop them and wait until they are Stopped",
            )

    def job(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """DescribeTrainingJob / DescribeProcessingJob for the jobs the executor ran; None for any other."""
        kinds = {
            "DescribeTrainingJob": ("training", "TrainingJobName"),
            "DescribeProcessingJob": ("processing", "ProcessingJobName"),
        }
        if operation not in kinds:
            return None
        kind, key = kinds[operation]
        job = self.executor.job(kind, request[key])
        return job.describe() if job else None


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _json(value: Any) -> bytes:
    return json.dumps(value, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v)).encode()


Answer = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class After(Protocol):
    """Sees a call passed on to moto, with moto's status and body."""

    def __call__(self, operation: str, request: dict[str, Any], *, status: int, data: bytes) -> None: ...


class JsonFront(Served):
    """An AWS JSON-protocol service on loopback: `answer` serves the operations it knows (None passes the
    request on to moto unchanged); `after` sees each forwarded call and moto's answer (to emit events).
    Every request is first checked against `service`'s model constraints, as the service checks it, so that
    a client without the local botocore hook (the AWS CLI, another SDK) meets the same 400."""

    def __init__(
        self, moto_endpoint: str, service: str, *, target_prefix: str, answer: Answer, after: After | None = None
    ) -> None:
        self.moto, self.service, self.prefix = moto_endpoint.rstrip("/"), service, target_prefix
        self.answer, self.after = answer, after
        self.loopback = Loopback(self._respond, name=f"front-{target_prefix}")

    def _respond(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        kind = {"Content-Type": "application/x-amz-json-1.1"}
        operation = headers.get("X-Amz-Target", "").removeprefix(f"{self.prefix}.")
        request = json.loads(body or b"{}")
        refused = constraints.request_problems(self.service, operation, request, wire=True)
        if refused:
            message = str(constraints.ConstraintViolation(operation, refused).response["Error"]["Message"])
            return 400, kind, _json({"__type": "ValidationException", "message": message})
        try:
            answer = self.answer(operation, request)
        except ServiceError as error:
            return 400, kind, _json({"__type": error.code, "message": error.message})
        if answer is not None:
            return 200, kind, _json(answer)
        status, data = self._forward(path, headers, body)
        if self.after is not None:
            self.after(operation, request, status=status, data=data)
        return status, kind, data

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        keep = {k: v for k, v in headers.items() if k.lower() not in {"host", "content-length", "connection"}}
        request = urllib.request.Request(f"{self.moto}{path}", data=body, headers=keep, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (moto on loopback)
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def sagemaker_front(api: SageMakerApi, moto_endpoint: str, hosting: Any = None) -> JsonFront:
    """`hosting` (local.hosting.Hosting) answers the model, endpoint-config and endpoint operations."""
    served: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        **api.operations,
        **(hosting.operations if hosting is not None else {}),
    }

    def answer(operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        if operation == "DeletePipeline":
            api.refuse_busy_delete(request)
        if operation in served:
            with quotas.admitting(operation, request):  # CreateEndpoint, UpdateEndpoint
                return served[operation](request)
        return api.job(operation, request)

    def after(operation: str, request: dict[str, Any], *, status: int, data: bytes) -> None:
        if operation == "UpdateModelPackage" and status == 200:
            # SageMaker announces approvals and rejections as a state change of the package
            arn = request["ModelPackageArn"]
            api.executor.package_event(api.executor.sagemaker.describe_model_package(ModelPackageName=arn))

    return JsonFront(moto_endpoint, "sagemaker", target_prefix="SageMaker", answer=answer, after=after)

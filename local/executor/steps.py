"""What each step type does when it runs: Processing and Training run a job, Condition chooses a branch,
RegisterModel creates the model package, Fail ends the execution with its message. Plus the retry policies and
the property files (Std:JsonGet) that steps read."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from local import constraints, quotas
from local.executor import service_calls
from local.executor.events import EventPublisher
from local.executor.expressions import ExpressionError, Scope, evaluate
from local.executor.jobs import Job, JobRunner
from local.executor.records import Execution, StepRun
from local.iam import enforce


class NewJob(Protocol):
    """Makes the job of a step (kind processing or training) from its create request."""

    def __call__(self, execution: Execution, step: str, *, kind: str, request: dict[str, Any]) -> Job: ...


class StepKinds:
    """Runs one attempt of a step, by its type."""

    def __init__(
        self,
        *,
        sagemaker: Any,
        runner: JobRunner,
        events: EventPublisher,
        new_job: NewJob,
        on_line: Callable[[Job, str], None] | None = None,
    ) -> None:
        self.sagemaker, self.runner, self.events = sagemaker, runner, events
        self.new_job, self.on_line = new_job, on_line

    def attempt(self, execution: Execution, step: dict[str, Any], run: StepRun, *, scope: Scope) -> None:
        kind = step["Type"]
        if kind in {"Processing", "Training"}:
            self._job(execution, step, run, scope=scope)
        elif kind == "Condition":
            outcome = all(holds(evaluate(c, scope)) for c in step["Arguments"]["Conditions"])
            run.properties = {"Outcome": outcome}
            run.metadata = {"Condition": {"Outcome": str(outcome).lower()}}
            run.status = "Succeeded"
        elif kind == "RegisterModel":
            arguments = evaluate(step["Arguments"], scope)
            arn = self.sagemaker.create_model_package(**arguments)["ModelPackageArn"]
            run.metadata = {"RegisterModel": {"Arn": arn}}
            run.properties = {"ModelPackageArn": arn}
            run.status = "Succeeded"
            with enforce.acting_as(None):  # SageMaker's own announcement, not a call of the pipeline's role
                self.events.package(self.sagemaker.describe_model_package(ModelPackageName=arn))
        elif kind == "Fail":
            message = str(evaluate(step["Arguments"].get("ErrorMessage", ""), scope))
            run.metadata = {"Fail": {"ErrorMessage": message}}
            run.status, run.failure_reason = "Failed", message
        else:
            raise ExpressionError(f"step type {kind} is not supported by the local executor")

    def _job(self, execution: Execution, step: dict[str, Any], run: StepRun, *, scope: Scope) -> None:
        kind = step["Type"]
        arguments = evaluate(step["Arguments"], scope)
        refused = refusal(execution.id, run.name, kind=kind, arguments=arguments)
        if refused is not None:  # SageMaker refuses the Create call: the step fails, and no job exists
            run.status, run.failure_reason = "Failed", refused
            return
        job = self.new_job(
            execution, run.name, kind="processing" if kind == "Processing" else "training", request=arguments
        )
        job_role = enforce.identity_of(arguments.get("RoleArn"))
        # the pipeline's role creates the job and passes it its role; the job's role pulls its image and logs
        cannot_start = _create_denied(kind, job.name, arguments) or service_calls.refused(
            job_role, service_calls.job_calls(job.kind, job.name, arguments)
        )
        if cannot_start is not None:
            run.status, run.failure_reason = "Failed", cannot_start
            return
        run.metadata = {f"{kind}Job": {"Arn": job.arn}}
        with enforce.acting_as(job_role):  # it reads its inputs and writes its outputs as that role
            self.runner.run(job, self.on_line)
        # the pipeline's role watched the job (and stopped it, on a stop)
        watched = service_calls.watch_calls(job.kind, job.name, execution.stop.is_set())
        failed_watch = service_calls.refused(enforce.current(), watched)
        if failed_watch is not None:
            run.status, run.failure_reason = "Failed", failed_watch
            return
        run.properties = job.describe()
        if job.status == "Completed":
            run.status = "Succeeded"
        else:
            run.status = "Stopped" if execution.stop.is_set() else "Failed"
            run.failure_reason = job.failure_reason


CREATE = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
}


def refusal(execution_id: str, step: str, *, kind: str, arguments: dict[str, Any]) -> str | None:
    """What SageMaker answers when the pipeline creates the step's job from `arguments` (the step's resolved
    Arguments, with the job name the pipeline gives: pipelines-<execution id>-<step>-<random>), or None."""
    operation, name_key = CREATE[kind]
    name = f"pipelines-{execution_id}-{step}".lower()[:52]
    found = constraints.request_problems("sagemaker", operation, {**arguments, name_key: name})
    if found:
        return f"ClientError: {constraints.ConstraintViolation(operation, found)}"
    quotas.claim_job(operation, {**arguments, name_key: name}, name_key=name_key)  # raises QuotaExceeded
    return None


def _create_denied(kind: str, name: str, arguments: dict[str, Any]) -> str | None:
    """Whether the acting role (the pipeline's) may create the job, as SageMaker asks IAM when the step starts."""
    operation, name_key = CREATE[kind]
    identity = enforce.current()
    if identity is None:
        return None
    try:
        enforce.authorise(identity, "sagemaker", operation, params={**arguments, name_key: name})
    except enforce.AccessDenied as denial:
        return f"ClientError: {denial}"
    return None


class PropertyFiles:
    """Std:JsonGet's documents: a processing step's output file, read from S3 once per execution."""

    def __init__(self, s3: Any, execution: Execution, steps: dict[str, Any]) -> None:
        self.s3, self.execution, self.steps = s3, execution, steps
        self.cache: dict[tuple[str, str], Any] = {}

    def load(self, step: str, name: str) -> Any:
        if (step, name) not in self.cache:
            declared = {f["PropertyFileName"]: f for f in self.steps[step][0].get("PropertyFiles", [])}
            run = self.execution.steps.get(step)
            if name not in declared or run is None or run.status != "Succeeded":
                raise ExpressionError(f"property file {name} of step {step} is not available")
            outputs = run.properties["ProcessingOutputConfig"]["Outputs"]
            folder = next(o for o in outputs if o["OutputName"] == declared[name]["OutputName"])["S3Output"]["S3Uri"]
            bucket, _, prefix = folder.removeprefix("s3://").partition("/")
            key = f"{prefix.rstrip('/')}/{declared[name]['FilePath']}"
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            self.cache[(step, name)] = json.loads(body)
        return self.cache[(step, name)]


def holds(condition: dict[str, Any]) -> bool:
    """Whether a Condition step's condition is true (its values already resolved)."""
    kind = condition["Type"]
    if kind == "Not":
        return not holds(condition["Expression"])
    if kind == "Or":
        return any(holds(c) for c in condition["Conditions"])
    if kind == "In":
        return condition["QueryValue"] in condition["Values"]
    left, right = condition["LeftValue"], condition["RightValue"]
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "Equals": lambda a, b: a == b,
        "GreaterThan": lambda a, b: float(a) > float(b),
        "GreaterThanOrEqualTo": lambda a, b: float(a) >= float(b),
        "LessThan": lambda a, b: float(a) < float(b),
        "LessThanOrEqualTo": lambda a, b: float(a) <= float(b),
    }
    if kind not in comparisons:
        raise ExpressionError(f"condition type {kind} is not supported")
    return comparisons[kind](left, right)


def retry_wait(policies: list[dict[str, Any]], error: str, attempt: int) -> float | None:
    """Seconds to wait before the next attempt, or None when no policy retries `error` again."""
    for policy in policies:
        if error in policy.get("ExceptionType", []) and attempt < policy.get("MaxAttempts", 1):
            return float(policy.get("IntervalSeconds", 1)) * float(policy.get("BackoffRate", 2.0)) ** (attempt - 1)
    return None

"""Pipeline executions, run from the definition JSON that `pipeline_def` builds and SageMaker would run: the
service's operations (start, describe, list, stop, retry) and the scheduling of steps.

Each execution runs in its own thread: steps start when what they depend on (DependsOn, and every
`Get Steps.X...` or property file of X in their arguments) has succeeded; a Condition chooses its IfSteps or
ElseSteps. What each step type does is in local.executor.steps, the events SageMaker sends in
local.executor.events, the saved state in local.executor.state. Retry policies apply to the errors SageMaker
retries (never to an AlgorithmError).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.executor.events import EventPublisher
from local.executor.expressions import ExpressionError, Scope
from local.executor.jobs import Job, JobInfrastructureError, JobRunner
from local.executor.records import TERMINAL, Execution, ServiceError, StepRun, dependencies, flatten, typed
from local.executor.steps import PropertyFiles, StepKinds, retry_wait
from local.iam import enforce
from local.iam.check import Identity
from local.quotas import QuotaExceeded

__all__ = ["TERMINAL", "Executor", "ServiceError"]
# what a step's retry policy calls the errors SageMaker may retry
RETRIED = {JobInfrastructureError: "SageMaker.JOB_INTERNAL_ERROR", QuotaExceeded: "SageMaker.RESOURCE_LIMIT"}


class Executor:
    """Start, describe, list, stop and retry executions; the jobs they ran are described from here too."""

    def __init__(
        self,
        sagemaker: Any,
        events: Any,
        s3: Any,
        *,
        runner: JobRunner,
        work: Path,
        on_line: Callable[[Job, str], None] | None = None,
    ) -> None:
        self.sagemaker, self.events, self.s3, self.runner = sagemaker, events, s3, runner
        self.work = work
        self.on_line = on_line
        self.executions: dict[str, Execution] = {}
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.publish = EventPublisher(events)
        self.kinds = StepKinds(
            sagemaker=sagemaker, runner=runner, events=self.publish, new_job=self._job, on_line=on_line
        )

    def start(self, request: dict[str, Any]) -> str:
        name = request["PipelineName"].rsplit("/", 1)[-1]
        token = request.get("ClientRequestToken")
        with self.lock:
            for execution in self.executions.values():
                if token and execution.token == token and execution.pipeline_name == name:
                    return execution.arn  # the same request again starts nothing new
        try:
            pipeline = self.sagemaker.describe_pipeline(PipelineName=name)
        except Exception as error:
            raise ServiceError("ResourceNotFound", f"Pipeline {name} does not exist") from error
        definition = json.loads(pipeline["PipelineDefinition"])
        parameters = self._parameters(definition, request.get("PipelineParameters", []))
        run_id = secrets.token_hex(6)
        execution = Execution(
            arn=f"{pipeline['PipelineArn']}/execution/{run_id}",
            pipeline_name=name,
            pipeline_arn=pipeline["PipelineArn"],
            definition=definition,
            parameters=parameters,
            display_name=request.get("PipelineExecutionDisplayName") or f"execution-{int(time.time() * 1000)}",
            description=request.get("PipelineExecutionDescription", ""),
            token=token,
        )
        with self.lock:
            self.executions[execution.arn] = execution
        self.publish.execution(execution, None)
        threading.Thread(target=self._run, args=(execution,), name=f"execution-{run_id}", daemon=True).start()
        return execution.arn

    def execution(self, arn: str) -> Execution:
        with self.lock:
            if arn not in self.executions:
                raise ServiceError("ResourceNotFound", f"Pipeline execution {arn} does not exist")
            return self.executions[arn]

    def executions_of(self, pipeline_name: str, sort_ascending: bool = False) -> list[Execution]:
        name = pipeline_name.rsplit("/", 1)[-1]
        with self.lock:
            chosen = [e for e in self.executions.values() if e.pipeline_name == name]
        return sorted(chosen, key=lambda e: e.created, reverse=not sort_ascending)

    def stop(self, arn: str) -> None:
        execution = self.execution(arn)
        if execution.status != "Executing":
            raise ServiceError("ValidationException", f"Execution is {execution.status}; only an executing one stops")
        self._set_status(execution, "Stopping")
        execution.stop.set()
        with self.lock:
            running = [j for j in self.jobs.values() if j.arn in self._job_arns(execution) and j.status == "InProgress"]
        for job in running:
            job.stop.set()

    def retry(self, arn: str) -> None:
        execution = self.execution(arn)
        if execution.status not in {"Failed", "Stopped"}:
            raise ServiceError("ValidationException", f"Execution is {execution.status}; only a failed one retries")
        with self.lock:
            for name in [n for n, s in execution.steps.items() if s.status in {"Failed", "Stopped"}]:
                del execution.steps[name]
            execution.stop = threading.Event()
            execution.failure_reason = None
        self._set_status(execution, "Executing")
        threading.Thread(target=self._run, args=(execution,), daemon=True).start()

    def job(self, kind: str, name: str) -> Job | None:
        with self.lock:
            job = self.jobs.get(name)
        return job if job is not None and job.kind == kind else None

    def _parameters(self, definition: dict[str, Any], overrides: list[dict[str, str]]) -> dict[str, Any]:
        declared = {p["Name"]: p for p in definition.get("Parameters", [])}
        values = {name: p.get("DefaultValue") for name, p in declared.items()}
        for override in overrides:
            if override["Name"] not in declared:
                raise ServiceError("ValidationException", f"Parameter {override['Name']} is not declared")
            values[override["Name"]] = typed(declared[override["Name"]], override["Value"])
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise ServiceError("ValidationException", f"Parameters without a value: {', '.join(missing)}")
        return values

    def _run(self, execution: Execution) -> None:
        steps = flatten(execution.definition)
        scope = Scope(
            parameters=execution.parameters,
            execution={
                "PipelineExecutionId": execution.id,
                "PipelineExecutionArn": execution.arn,
                "PipelineName": execution.pipeline_name,
                "PipelineExecutionStartTime": execution.created.isoformat(),
                "CurrentDateTime": datetime.now(UTC).isoformat(),
            },
            steps={name: run.properties for name, run in execution.steps.items() if run.status == "Succeeded"},
            files=PropertyFiles(self.s3, execution, steps),
        )
        role = self._role(execution)
        try:
            while not execution.stop.is_set():
                ready = self._ready(execution, steps)
                if not ready:
                    break
                threads = [
                    threading.Thread(
                        target=self._step, args=(execution, steps[name][0], scope), kwargs={"role": role}, daemon=True
                    )
                    for name in ready
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            self._finish(execution)

    def _ready(self, execution: Execution, steps: dict[str, Any]) -> list[str]:
        ready = []
        for name, (step, parent, branch) in steps.items():
            if name in execution.steps:
                continue
            if parent is not None:
                owner = execution.steps.get(parent)
                if owner is None or owner.status != "Succeeded" or owner.properties.get("Outcome") != branch:
                    continue
            if all(execution.steps.get(d) and execution.steps[d].status == "Succeeded" for d in dependencies(step)):
                ready.append(name)
        return ready[: int(self._parallelism(execution))]

    def _parallelism(self, execution: Execution) -> int:
        with self.lock:
            try:
                described = self.sagemaker.describe_pipeline(PipelineName=execution.pipeline_name)
                return int(described.get("ParallelismConfiguration", {}).get("MaxParallelExecutionSteps", 50))
            except Exception:  # the pipeline was deleted while it ran: keep going one step at a time
                return 1

    def _role(self, execution: Execution) -> Identity | None:
        """The pipeline's role: SageMaker creates the steps' jobs and registers models with it."""
        try:
            described = self.sagemaker.describe_pipeline(PipelineName=execution.pipeline_name)
        except Exception:  # deleted since it started: its steps run as no known role
            return None
        return enforce.identity_of(described.get("RoleArn"))

    def _step(self, execution: Execution, step: dict[str, Any], scope: Scope, *, role: Identity | None = None) -> None:
        run = StepRun(name=step["Name"], type=step["Type"], description=step.get("Description", ""))
        with self.lock:
            execution.steps[run.name] = run
        self.publish.step(execution, run, None)
        previous = "Starting"
        run.status = "Executing"
        self.publish.step(execution, run, previous)
        policies = step.get("RetryPolicies", [])
        while True:
            run.attempts += 1
            try:
                with enforce.acting_as(role):
                    self.kinds.attempt(execution, step, run, scope=scope)
                break
            except (JobInfrastructureError, QuotaExceeded) as error:
                wait = retry_wait(policies, RETRIED[type(error)], run.attempts)
                if wait is None or execution.stop.wait(wait):
                    run.status, run.failure_reason = "Failed", str(error)
                    break
            except ExpressionError as error:
                run.status, run.failure_reason = "Failed", f"ClientError: {error}"
                break
        if execution.stop.is_set() and run.status not in {"Succeeded", "Failed"}:
            run.status = "Stopped"
        run.ended = datetime.now(UTC)
        with self.lock:
            if run.status == "Succeeded":
                scope.steps[run.name] = run.properties
        self.publish.step(execution, run, "Executing")

    def _job(self, execution: Execution, step: str, *, kind: str, request: dict[str, Any]) -> Job:
        # SageMaker's own naming: pipelines-<execution id>-<step>-<random>, lower case, at most 63 characters
        name = f"pipelines-{execution.id}-{step}-{secrets.token_hex(5)}".lower()[:63]
        account_region = execution.pipeline_arn.split(":")[3:5]
        region, account = account_region[0], account_region[1]
        arn = f"arn:aws:sagemaker:{region}:{account}:{kind}-job/{name}"
        job = Job(kind=kind, name=name, arn=arn, request=request, folder=self.work / "jobs" / name)
        with self.lock:
            self.jobs[name] = job
        return job

    def _job_arns(self, execution: Execution) -> set[str]:
        return {
            str(meta["Arn"])
            for run in execution.steps.values()
            for meta in run.metadata.values()
            if isinstance(meta, dict) and "Arn" in meta
        }

    def _finish(self, execution: Execution) -> None:
        runs = list(execution.steps.values())
        failed = [r for r in runs if r.status == "Failed"]
        if failed:
            fail_steps = [r for r in failed if r.type == "Fail"]
            execution.failure_reason = (
                fail_steps[0].failure_reason if fail_steps else "Step failure: One or multiple steps failed."
            )
            status = "Failed"
        elif execution.stop.is_set():
            status = "Stopped"
        else:
            status = "Succeeded"
        self._set_status(execution, status)

    def _set_status(self, execution: Execution, status: str) -> None:
        previous = execution.status
        execution.status, execution.modified = status, datetime.now(UTC)
        self.publish.execution(execution, previous)

    def package_event(self, package: dict[str, Any]) -> None:
        """SageMaker announces a model package's approval changes too (local.executor.server calls this)."""
        self.publish.package(package)

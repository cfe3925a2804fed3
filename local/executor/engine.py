"""Pipeline executions, run from the definition JSON that `pipeline_def` builds and SageMaker would run.

Each execution runs in its own thread: steps start when what they depend on (DependsOn, and every
`Get Steps.X...` or property file of X in their arguments) has succeeded; a Condition chooses its IfSteps or
ElseSteps; Processing and Training steps run as jobs (local.executor.jobs); RegisterModel creates the model
package in the emulated registry; Fail ends the execution with its message. Retry policies apply to the
errors SageMaker retries (never to an AlgorithmError). Status changes go to EventBridge as SageMaker's events.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.executor.expressions import ExpressionError, Scope, evaluate, references
from local.executor.jobs import Job, JobInfrastructureError, JobRunner

TERMINAL = {"Succeeded", "Failed", "Stopped"}
PIPELINE_SOURCE = "aws.sagemaker"
EXECUTION_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
PACKAGE_CHANGE = "SageMaker Model Package State Change"


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


class Executor:
    """Start, describe, list, stop and retry executions; the jobs they ran are described from here too."""

    def __init__(
        self,
        sagemaker: Any,
        events: Any,
        s3: Any,
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

    # ---------- the API ----------

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
        self._execution_event(execution, None)
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

    # ---------- running ----------

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
            files=_PropertyFiles(self, execution, steps),
        )
        try:
            while not execution.stop.is_set():
                ready = self._ready(execution, steps)
                if not ready:
                    break
                threads = [
                    threading.Thread(target=self._step, args=(execution, steps[name][0], scope), daemon=True)
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

    def _step(self, execution: Execution, step: dict[str, Any], scope: Scope) -> None:
        run = StepRun(name=step["Name"], type=step["Type"], description=step.get("Description", ""))
        with self.lock:
            execution.steps[run.name] = run
        self._step_event(execution, run, None)
        previous = "Starting"
        run.status = "Executing"
        self._step_event(execution, run, previous)
        policies = step.get("RetryPolicies", [])
        while True:
            run.attempts += 1
            try:
                self._attempt(execution, step, run, scope)
                break
            except JobInfrastructureError as error:
                wait = _retry_wait(policies, "SageMaker.JOB_INTERNAL_ERROR", run.attempts)
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
        self._step_event(execution, run, "Executing")

    def _attempt(self, execution: Execution, step: dict[str, Any], run: StepRun, scope: Scope) -> None:
        kind = step["Type"]
        if kind in {"Processing", "Training"}:
            arguments = evaluate(step["Arguments"], scope)
            job = self._job(execution, run.name, "processing" if kind == "Processing" else "training", arguments)
            run.metadata = {f"{kind}Job": {"Arn": job.arn}}
            self.runner.run(job, self.on_line)
            run.properties = job.describe()
            if job.status == "Completed":
                run.status = "Succeeded"
            else:
                run.status = "Stopped" if execution.stop.is_set() else "Failed"
                run.failure_reason = job.failure_reason
        elif kind == "Condition":
            outcome = all(_condition(evaluate(c, scope)) for c in step["Arguments"]["Conditions"])
            run.properties = {"Outcome": outcome}
            run.metadata = {"Condition": {"Outcome": str(outcome).lower()}}
            run.status = "Succeeded"
        elif kind == "RegisterModel":
            arguments = evaluate(step["Arguments"], scope)
            arn = self.sagemaker.create_model_package(**arguments)["ModelPackageArn"]
            run.metadata = {"RegisterModel": {"Arn": arn}}
            run.properties = {"ModelPackageArn": arn}
            run.status = "Succeeded"
            self.package_event(self.sagemaker.describe_model_package(ModelPackageName=arn))
        elif kind == "Fail":
            message = str(evaluate(step["Arguments"].get("ErrorMessage", ""), scope))
            run.metadata = {"Fail": {"ErrorMessage": message}}
            run.status, run.failure_reason = "Failed", message
        else:
            raise ExpressionError(f"step type {kind} is not supported by the local executor")

    def _job(self, execution: Execution, step: str, kind: str, request: dict[str, Any]) -> Job:
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

    # ---------- events ----------

    def _set_status(self, execution: Execution, status: str) -> None:
        previous = execution.status
        execution.status, execution.modified = status, datetime.now(UTC)
        self._execution_event(execution, previous)

    def _execution_event(self, execution: Execution, previous: str | None) -> None:
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

    def _step_event(self, execution: Execution, run: StepRun, previous: str | None) -> None:
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

    def package_event(self, package: dict[str, Any]) -> None:
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


class _PropertyFiles:
    """Std:JsonGet's documents: a processing step's output file, read from S3 once per execution."""

    def __init__(self, executor: Executor, execution: Execution, steps: dict[str, Any]) -> None:
        self.executor, self.execution, self.steps = executor, execution, steps
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
            body = self.executor.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            self.cache[(step, name)] = json.loads(body)
        return self.cache[(step, name)]


def _condition(condition: dict[str, Any]) -> bool:
    kind = condition["Type"]
    if kind == "Not":
        return not _condition(condition["Expression"])
    if kind == "Or":
        return any(_condition(c) for c in condition["Conditions"])
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


def _retry_wait(policies: list[dict[str, Any]], error: str, attempt: int) -> float | None:
    """Seconds to wait before the next attempt, or None when no policy retries `error` again."""
    for policy in policies:
        if error in policy.get("ExceptionType", []) and attempt < policy.get("MaxAttempts", 1):
            return float(policy.get("IntervalSeconds", 1)) * float(policy.get("BackoffRate", 2.0)) ** (attempt - 1)
    return None


# ---------- state across restarts ----------

_INTERRUPTED = "Stopped: the local stack stopped during the run"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def save_state(executor: Executor, path: Path) -> None:
    """Executions and the jobs they ran, as JSON (a restarted stack still answers for them)."""
    with executor.lock:
        executions = [
            {
                "arn": e.arn,
                "pipeline_name": e.pipeline_name,
                "pipeline_arn": e.pipeline_arn,
                "definition": e.definition,
                "parameters": e.parameters,
                "display_name": e.display_name,
                "description": e.description,
                "token": e.token,
                "status": e.status,
                "created": _iso(e.created),
                "modified": _iso(e.modified),
                "failure_reason": e.failure_reason,
                "steps": [
                    {
                        **{k: v for k, v in vars(s).items() if k not in {"started", "ended"}},
                        "started": _iso(s.started),
                        "ended": _iso(s.ended),
                    }
                    for s in e.steps.values()
                ],
            }
            for e in executor.executions.values()
        ]
        jobs = [
            {
                "kind": j.kind,
                "name": j.name,
                "arn": j.arn,
                "request": j.request,
                "folder": str(j.folder),
                "status": j.status,
                "failure_reason": j.failure_reason,
                "exit_message": j.exit_message,
                "created": _iso(j.created),
                "started": _iso(j.started),
                "ended": _iso(j.ended),
                "metrics": {k: [v, _iso(t)] for k, (v, t) in j.metrics.items()},
            }
            for j in executor.jobs.values()
        ]
    path.write_text(json.dumps({"executions": executions, "jobs": jobs}, default=str, indent=1))


def load_state(executor: Executor, path: Path) -> None:
    if not path.exists():
        return
    state = json.loads(path.read_text())
    for raw in state["jobs"]:
        job = Job(
            kind=raw["kind"],
            name=raw["name"],
            arn=raw["arn"],
            request=raw["request"],
            folder=Path(raw["folder"]),
            status=raw["status"] if raw["status"] != "InProgress" else "Stopped",
            failure_reason=raw["failure_reason"],
            exit_message=raw["exit_message"],
            created=_time(raw["created"]) or datetime.now(UTC),
            started=_time(raw["started"]),
            ended=_time(raw["ended"]),
            metrics={k: (float(v), _time(t) or datetime.now(UTC)) for k, (v, t) in raw["metrics"].items()},
        )
        executor.jobs[job.name] = job
    for raw in state["executions"]:
        steps = {}
        for s in raw.pop("steps"):
            run = StepRun(**{**s, "started": _time(s["started"]), "ended": _time(s["ended"])})
            if run.status not in TERMINAL:
                run.status, run.failure_reason = "Stopped", _INTERRUPTED
            steps[run.name] = run
        execution = Execution(
            **{**raw, "created": _time(raw["created"]), "modified": _time(raw["modified"]), "steps": steps}
        )
        if execution.status not in TERMINAL:
            execution.status, execution.failure_reason = "Stopped", _INTERRUPTED
        executor.executions[execution.arn] = execution

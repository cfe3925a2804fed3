"""Processing and training jobs as processes of container/.venv, on the SageMaker container contract.

A job gets its own `/opt/ml` (OPT_ML_ROOT) in the work folder. S3 inputs are copied there from the emulated S3
before it starts, and its outputs are copied back when it ends (EndOfJob). The training job's model folder
becomes `<S3OutputPath>/<job>/output/model.tar.gz`. The log is kept per job; metric definitions are read from
it as the job runs, as SageMaker reads CloudWatch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.constraints import job_pythonpath

REPO = Path(__file__).resolve().parents[2]
CONTAINER = REPO / "container"
CONTAINER_BIN = CONTAINER / ".venv" / "bin"
OPT_ML = "/opt/ml"


def container_environment(*layers: dict[str, str]) -> dict[str, str]:
    """The environment of a process of container/.venv: this one's with `layers` over it, the `detector` package
    on the path, and AWS's request constraints installed at start-up (local/constraints.py)."""
    merged: dict[str, str] = {**os.environ}
    for layer in layers:
        merged.update(layer)
    return {**merged, "PYTHONPATH": job_pythonpath(CONTAINER), "PYTHONWARNINGS": "ignore"}


class JobFailed(Exception):
    """The job ran and failed (AlgorithmError, ClientError): SageMaker does not retry these."""


class JobInfrastructureError(Exception):
    """The job could not be staged or collected (S3, disk): SageMaker.JOB_INTERNAL_ERROR, retried by policy."""


@dataclass
class Job:
    """One job: its request (resolved arguments), its state and what Describe* answers."""

    kind: str  # "processing" | "training"
    name: str
    arn: str
    request: dict[str, Any]
    folder: Path
    status: str = "InProgress"
    failure_reason: str | None = None
    exit_message: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: datetime | None = None
    ended: datetime | None = None
    metrics: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def log(self) -> Path:
        return self.folder / "job.log"

    def model_artifacts(self) -> str:
        output = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"

    def describe(self) -> dict[str, Any]:
        times = {"CreationTime": self.created, "LastModifiedTime": self.ended or self.started or self.created}
        if self.kind == "training":
            described = {
                **self.request,
                "TrainingJobName": self.name,
                "TrainingJobArn": self.arn,
                "TrainingJobStatus": self.status,
                "SecondaryStatus": {"InProgress": "Training"}.get(self.status, self.status),
                "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts()},
                "FinalMetricDataList": [
                    {"MetricName": name, "Value": value, "Timestamp": at}
                    for name, (value, at) in sorted(self.metrics.items())
                ],
                "TrainingStartTime": self.started,
                "TrainingEndTime": self.ended,
                **times,
            }
        else:
            described = {
                **self.request,
                "ProcessingJobName": self.name,
                "ProcessingJobArn": self.arn,
                "ProcessingJobStatus": self.status,
                "ProcessingStartTime": self.started,
                "ProcessingEndTime": self.ended,
                "ExitMessage": self.exit_message,
                **times,
            }
        described["FailureReason"] = self.failure_reason
        return {k: v for k, v in described.items() if v is not None}


class JobRunner:
    """Runs jobs against the emulated S3 (`s3` is a boto3 client) with `environment` for the job processes."""

    def __init__(self, s3: Any, environment: dict[str, str], container_bin: Path = CONTAINER_BIN) -> None:
        self.s3 = s3
        self.environment = environment
        self.container_bin = container_bin

    # ---- S3 <-> the job's folders ----

    def download(self, uri: str, into: Path) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        into.mkdir(parents=True, exist_ok=True)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        if not keys:
            raise JobFailed(f"ClientError: no data at {uri}")
        for key in keys:
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.s3.download_file(bucket, key, str(target))

    def upload(self, folder: Path, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{file.relative_to(folder).as_posix()}"
            self.s3.upload_file(str(file), bucket, key)

    def local(self, job: Job, container_path: str) -> Path:
        """A container path (/opt/ml/...) in the job's own root."""
        if not container_path.startswith(OPT_ML):
            raise JobFailed(f"ClientError: {container_path} is outside {OPT_ML}")
        return job.folder / "opt_ml" / container_path[len(OPT_ML) :].lstrip("/")

    # ---- running ----

    def run(self, job: Job, on_line: Callable[[Job, str], None] | None = None) -> None:
        """Stage, run and collect `job`; sets its status and failure reason. Raises JobInfrastructureError when
        staging or collecting fails (the step's retry policy decides)."""
        job.folder.mkdir(parents=True, exist_ok=True)
        job.started = datetime.now(UTC)
        try:
            command = self._stage(job)
            code = self._process(job, command, on_line)
            self._collect(job, code)
        except JobFailed as failure:
            job.status, job.failure_reason = "Failed", str(failure)
        except (OSError, ValueError) as error:
            job.status, job.failure_reason = "Failed", f"InternalServerError: {type(error).__name__}: {error}"
            raise JobInfrastructureError(job.failure_reason) from error
        finally:
            job.ended = datetime.now(UTC)

    def _stage(self, job: Job) -> list[str]:
        request = job.request
        if job.kind == "processing":
            for entry in request.get("ProcessingInputs", []):
                if "S3Input" in entry:
                    self.download(entry["S3Input"]["S3Uri"], self.local(job, entry["S3Input"]["LocalPath"]))
            for entry in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self.local(job, entry["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
            app = request["AppSpecification"]
            return [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        config = self.local(job, f"{OPT_ML}/input/config")
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(_json(request.get("HyperParameters", {})))
        (config / "resourceconfig.json").write_text(_json({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for channel in request.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self.download(source, self.local(job, f"{OPT_ML}/input/data/{channel['ChannelName']}"))
        for folder in ("model", "output", "checkpoints"):
            self.local(job, f"{OPT_ML}/{folder}").mkdir(parents=True, exist_ok=True)
        return ["train"]

    def _process(self, job: Job, command: list[str], on_line: Callable[[Job, str], None] | None) -> int:
        env = {
            **self.environment,
            "OPT_ML_ROOT": str(job.folder / "opt_ml"),
            "PYTHONPATH": job_pythonpath(CONTAINER),
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{self.container_bin}:{CONTAINER / 'bin'}:{os.environ.get('PATH', '')}",
            **job.request.get("Environment", {}),
        }
        limit = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        deadline = time.monotonic() + limit
        with job.log.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 (the definition's own entry point, in our container venv)
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                cwd=job.folder,
            )
            # `make down` finds and ends a job that outlived its stack by this file
            (job.folder / "pid").write_text(str(process.pid))
            reader = threading.Thread(target=self._read, args=(job, process, log, on_line), daemon=True)
            reader.start()
            while process.poll() is None:
                if job.stop.is_set() or time.monotonic() > deadline:
                    _terminate(process)
                    break
                time.sleep(0.2)
            reader.join(timeout=10)
            code = process.wait()
            (job.folder / "pid").unlink(missing_ok=True)
        if job.stop.is_set():
            raise JobFailed("Stopped: the job was stopped")
        if time.monotonic() > deadline:
            raise JobFailed(f"MaxRuntimeExceeded: the job ran longer than {limit} seconds")
        return code

    def _read(self, job: Job, process: subprocess.Popen[str], log: Any, on_line: Any) -> None:
        definitions = job.request.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            for name, pattern in patterns:
                found = pattern.search(line)
                if found:
                    with contextlib.suppress(ValueError):
                        job.metrics[name] = (float(found.group(1)), datetime.now(UTC))
            if on_line is not None:
                on_line(job, line.rstrip("\n"))

    def _collect(self, job: Job, code: int) -> None:
        root = job.folder / "opt_ml"
        if job.kind == "processing":
            message = root / "output" / "message"
            job.exit_message = message.read_text().strip()[:1024] if message.exists() else None
            if code != 0:
                raise JobFailed(f"AlgorithmError: {job.exit_message or _tail(job.log)}")
            for entry in job.request.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self.upload(self.local(job, entry["S3Output"]["LocalPath"]), entry["S3Output"]["S3Uri"])
            job.status = "Completed"
            return
        failure = root / "output" / "failure"
        if code != 0:
            reason = failure.read_text().strip() if failure.exists() else _tail(job.log)
            raise JobFailed(f"AlgorithmError: {reason}"[:1024])
        archive = job.folder / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for file in sorted((root / "model").iterdir()):
                tar.add(file, arcname=file.name)
        bucket, _, key = job.model_artifacts().removeprefix("s3://").partition("/")
        self.s3.upload_file(str(archive), bucket, key)
        job.status = "Completed"


def _terminate(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return " | ".join(text[-lines:]) or "the job exited with an error and no message"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)

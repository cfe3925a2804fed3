"""Processing and training jobs as processes of container/.venv, on the SageMaker container contract.

A job gets its own `/opt/ml` (OPT_ML_ROOT) in the work folder. S3 inputs are copied there from the emulated S3
before it starts, and its outputs are copied back when it ends (EndOfJob). The training job's model folder
becomes `<S3OutputPath>/<job>/output/model.tar.gz`. The log is kept per job; metric definitions are read from
it as the job runs, as SageMaker reads CloudWatch.

A training job with InstanceCount n runs as SageMaker runs it: n processes at once, one per host, each with its
own `/opt/ml` (`hosts/<host>/opt_ml`) and a resourceconfig.json naming every host. The hosts are named as SageMaker
names them (algo-1, algo-2, ...; network interface `lo`), and each binds its own loopback address (127.0.0.2,
127.0.0.3, ...) as a separate instance would; the names resolve in the job's processes only after a while, as they do
while SageMaker's cluster boots, or never when a test says so (`JobRunner.host_names`, local/executor/host_names.py).
Channels are replicated to every host (FullyReplicated) or split by object (ShardedByS3Key), the
checkpoints in S3 are given to every host, the job fails when any host fails (the others are stopped), and the
model archive holds what the hosts wrote in their model folders (in practice the one host that writes it).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from local.executor.cloudwatch import LogStream
from local.executor.host_names import HostNames
from local.executor.host_names import hosts as host_names
from local.iam import enforce, usage
from local.iam.process import DENIALS_ENV, IDENTITY_ENV
from sam_stack.container import CONTAINER, CONTAINER_BIN, job_pythonpath

OPT_ML = "/opt/ml"
# concurrent object downloads into a job (below botocore's 10 pooled connections): a Feature Store offline store
# holds a small file per record, and SageMaker fetches inputs in parallel too
DOWNLOADS = 8

# s3transfer moves data in worker threads, which start with an empty context: the stack's own transfers stay in the
# calling thread, so that they are authorised as the role acting there (local/iam)
IN_THIS_THREAD = TransferConfig(use_threads=False)


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

    @property
    def hosts(self) -> tuple[str, ...]:
        """The job's hosts: algo-1 alone, or algo-1, algo-2, ... for the instances of a training job."""
        count = int(self.request["ResourceConfig"]["InstanceCount"]) if self.kind == "training" else 1
        return host_names(count)

    def root(self, host: str) -> Path:
        """The host's /opt/ml."""
        return self.folder / "opt_ml" if len(self.hosts) == 1 else self.folder / "hosts" / host / "opt_ml"

    def model_artifacts(self) -> str:
        output = self.request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"

    def _training_seconds(self) -> dict[str, int]:
        """TrainingTimeInSeconds and BillableTimeInSeconds (at least 1), which SageMaker reports once a job has
        ended. A spot job here is never interrupted and waits for no capacity, so it is billed all its training
        time, as an on-demand one is (SageMaker's saving is 1 - billable / training)."""
        if self.started is None or self.ended is None:
            return {}
        seconds = max(1, math.ceil((self.ended - self.started).total_seconds()))
        return {"TrainingTimeInSeconds": seconds, "BillableTimeInSeconds": seconds}

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
                **self._training_seconds(),
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
    """Runs jobs against the emulated S3 (`s3` is a boto3 client) with `environment` for the job processes, whose
    host names resolve as `host_names` says."""

    def __init__(
        self, s3: Any, environment: dict[str, str], container_bin: Path = CONTAINER_BIN, *, logs: Any = None
    ) -> None:
        self.s3 = s3
        # the emulated CloudWatch Logs (a boto3 client), where a training job's lines go too; None: the log file only
        self.logs = logs
        self.environment = environment
        self.container_bin = container_bin
        self.host_names = HostNames()
        self._log_lock = threading.Lock()

    # ---- S3 <-> the job's folders ----

    def download(self, uri: str, into: list[Path], *, sharded: bool = False, required: bool = True) -> None:
        """The objects under `uri` into every folder of `into`, or, `sharded`, each object into one of them."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for folder in into:
            folder.mkdir(parents=True, exist_ok=True)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        if not keys and required:
            raise JobFailed(f"ClientError: no data at {uri}")
        copies = []
        for index, key in enumerate(keys):
            relative = key[len(prefix) :].lstrip("/") or Path(key).name
            copies += [(key, folder / relative) for folder in ([into[index % len(into)]] if sharded else into)]
        # a pool's threads start with an empty context: each copy runs in this one's (the job's role)
        context = contextvars.copy_context()
        with ThreadPoolExecutor(max_workers=DOWNLOADS, thread_name_prefix="download") as pool:
            for _ in pool.map(lambda copy: context.copy().run(self._fetch, bucket, *copy), copies):
                pass  # the first failure is raised here

    def _fetch(self, bucket: str, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        with target.open("wb") as out:
            shutil.copyfileobj(body, out)

    def upload(self, folder: Path, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{file.relative_to(folder).as_posix()}"
            self.s3.upload_file(str(file), bucket, key, Config=IN_THIS_THREAD)

    def local(self, job: Job, container_path: str, host: str = "algo-1") -> Path:
        """A container path (/opt/ml/...) in the host's own root."""
        if not container_path.startswith(OPT_ML):
            raise JobFailed(f"ClientError: {container_path} is outside {OPT_ML}")
        return job.root(host) / container_path[len(OPT_ML) :].lstrip("/")

    def on_every_host(self, job: Job, container_path: str) -> list[Path]:
        return [self.local(job, container_path, host) for host in job.hosts]

    # ---- running ----

    def run(self, job: Job, on_line: Callable[[Job, str], None] | None = None) -> None:
        """Stage, run and collect `job`; sets its status and failure reason. Raises JobInfrastructureError when
        staging or collecting fails (the step's retry policy decides)."""
        job.folder.mkdir(parents=True, exist_ok=True)
        job.started = datetime.now(UTC)
        try:
            command = self._stage(job)
            try:
                codes = self._processes(job, command, on_line)
            finally:
                self._save_checkpoints(job)  # SageMaker uploads them as they are written, failed job or not
            self._collect(job, codes)
        except JobFailed as failure:
            job.status, job.failure_reason = "Failed", str(failure)
        except (OSError, ValueError) as error:
            job.status, job.failure_reason = "Failed", f"InternalServerError: {type(error).__name__}: {error}"
            raise JobInfrastructureError(job.failure_reason) from error
        finally:
            job.ended = datetime.now(UTC)
            self._collect_denials(job)

    def _iam_environment(self, job: Job) -> dict[str, str]:
        """The job's role for its process (local/iam/process.py), when the executor acts as one."""
        identity = enforce.current()
        if identity is None:
            return {}
        path = job.folder / "iam-identity.json"
        path.write_text(json.dumps(identity.to_json()))
        environment = {IDENTITY_ENV: str(path), DENIALS_ENV: str(job.folder / "iam-denials.jsonl")}
        for name in (usage.USAGE_ENV, "PYTEST_CURRENT_TEST"):  # the usage record names the test the job ran for
            if os.environ.get(name):
                environment[name] = os.environ[name]
        return environment

    @staticmethod
    def _collect_denials(job: Job) -> None:
        """What the job's processes were refused is the test's concern even when the job swallowed it."""
        written = job.folder / "iam-denials.jsonl"
        if written.is_file():
            enforce.record_denials(written.read_text().splitlines())
            written.unlink()

    def _stage(self, job: Job) -> list[str]:
        request = job.request
        if job.kind == "processing":
            for entry in request.get("ProcessingInputs", []):
                if "S3Input" in entry:
                    self.download(entry["S3Input"]["S3Uri"], [self.local(job, entry["S3Input"]["LocalPath"])])
            for entry in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self.local(job, entry["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
            app = request["AppSpecification"]
            return [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        for host in job.hosts:
            config = self.local(job, f"{OPT_ML}/input/config", host)
            config.mkdir(parents=True, exist_ok=True)
            (config / "hyperparameters.json").write_text(_json(request.get("HyperParameters", {})))
            resources = {"current_host": host, "hosts": list(job.hosts), "network_interface_name": "lo"}
            (config / "resourceconfig.json").write_text(_json(resources))
            for folder in ("model", "output"):
                self.local(job, f"{OPT_ML}/{folder}", host).mkdir(parents=True, exist_ok=True)
        for channel in request.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
            into = self.on_every_host(job, f"{OPT_ML}/input/data/{channel['ChannelName']}")
            self.download(source["S3Uri"], into, sharded=sharded)
        checkpoints = request.get("CheckpointConfig")
        if checkpoints:  # what an earlier attempt (a retry, a spot interruption) saved, on every host
            local_path = checkpoints.get("LocalPath", f"{OPT_ML}/checkpoints")
            self.download(checkpoints["S3Uri"], self.on_every_host(job, local_path), required=False)
        return ["train"]

    def _save_checkpoints(self, job: Job) -> None:
        checkpoints = job.request.get("CheckpointConfig") if job.kind == "training" else None
        if not checkpoints:
            return
        for folder in self.on_every_host(job, checkpoints.get("LocalPath", f"{OPT_ML}/checkpoints")):
            if folder.is_dir():
                self.upload(folder, checkpoints["S3Uri"])

    def _processes(self, job: Job, command: list[str], on_line: Callable[[Job, str], None] | None) -> list[int]:
        """Every host's process at once; their exit codes. One that fails stops the others, as SageMaker does."""
        limit = job.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        deadline = time.monotonic() + limit
        many = len(job.hosts) > 1
        with job.log.open("w") as log:
            processes = {host: self._start(job, host, command) for host in job.hosts}
            # `make down` finds and ends a job that outlived its stack by this file
            (job.folder / "pid").write_text("\n".join(str(p.pid) for p in processes.values()))
            streams = self._log_streams(job)
            readers = [
                threading.Thread(
                    target=self._read,
                    args=(job, process),
                    kwargs={
                        "log": log,
                        "on_line": on_line,
                        "prefix": f"[{host}] " if many else "",
                        "stream": streams.get(host),
                    },
                    daemon=True,
                )
                for host, process in processes.items()
            ]
            for reader in readers:
                reader.start()
            while any(p.poll() is None for p in processes.values()):
                failed = any(p.poll() not in (None, 0) for p in processes.values())
                if failed or job.stop.is_set() or time.monotonic() > deadline:
                    for process in processes.values():
                        _terminate(process)
                    break
                time.sleep(0.2)
            for reader in readers:
                reader.join(timeout=10)
            for stream in streams.values():
                stream.close()
            codes = [process.wait() for process in processes.values()]
            (job.folder / "pid").unlink(missing_ok=True)
        if job.stop.is_set():
            raise JobFailed("Stopped: the job was stopped")
        if time.monotonic() > deadline:
            raise JobFailed(f"MaxRuntimeExceeded: the job ran longer than {limit} seconds")
        return codes

    def _log_streams(self, job: Job) -> dict[str, LogStream]:
        """A CloudWatch Logs stream per host of a training job, named as SageMaker names them."""
        if self.logs is None or job.kind != "training" or job.started is None:
            return {}
        start = int(job.started.timestamp())
        try:
            return {host: LogStream(self.logs, f"{job.name}/{host}-{start}") for host in job.hosts}
        except (ClientError, BotoCoreError, enforce.AccessDenied):
            return {}  # the job's log file has its lines; only this copy is missing

    def _start(self, job: Job, host: str, command: list[str]) -> subprocess.Popen[str]:
        env = {
            **self.environment,
            "OPT_ML_ROOT": str(job.root(host)),
            "PYTHONPATH": job_pythonpath(CONTAINER),
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{self.container_bin}:{CONTAINER / 'bin'}:{os.environ.get('PATH', '')}",
            **self._iam_environment(job),
            **job.request.get("Environment", {}),
            # the cluster's names, which no Environment of the request changes
            **self.host_names.environment(job.hosts),
        }
        return subprocess.Popen(  # noqa: S603 (the definition's own entry point, in our container venv)
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=job.folder,
        )

    def _read(
        self, job: Job, process: subprocess.Popen[str], *, log: Any, on_line: Any, prefix: str, stream: Any = None
    ) -> None:
        definitions = job.request.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        assert process.stdout is not None
        for line in process.stdout:
            with self._log_lock:
                log.write(prefix + line)
                log.flush()
            if stream is not None:
                stream.add(line)
            for name, pattern in patterns:
                found = pattern.search(line)
                if found:
                    with contextlib.suppress(ValueError):
                        job.metrics[name] = (float(found.group(1)), datetime.now(UTC))
            if on_line is not None:
                on_line(job, prefix + line.rstrip("\n"))

    def _collect(self, job: Job, codes: list[int]) -> None:
        root = job.root(job.hosts[0])
        if job.kind == "processing":
            message = root / "output" / "message"
            job.exit_message = message.read_text().strip()[:1024] if message.exists() else None
            if codes != [0]:
                raise JobFailed(f"AlgorithmError: {job.exit_message or _tail(job.log)}")
            for entry in job.request.get("ProcessingOutputConfig", {}).get("Outputs", []):
                self.upload(self.local(job, entry["S3Output"]["LocalPath"]), entry["S3Output"]["S3Uri"])
            job.status = "Completed"
            return
        failed = [host for host, code in zip(job.hosts, codes, strict=True) if code != 0]
        if failed:
            # the reason of the first host that wrote one (the others were stopped because of it)
            reasons = [job.root(h) / "output" / "failure" for h in failed]
            stated = [r.read_text().strip() for r in reasons if r.exists()]
            reason = stated[0] if stated else _tail(job.log)
            raise JobFailed(f"AlgorithmError: {reason}"[:1024])
        archive = job.folder / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            written: set[str] = set()
            for host in job.hosts:
                for file in sorted((job.root(host) / "model").iterdir()):
                    if file.name not in written:
                        tar.add(file, arcname=file.name)
                        written.add(file.name)
        bucket, _, key = job.model_artifacts().removeprefix("s3://").partition("/")
        self.s3.upload_file(str(archive), bucket, key, Config=IN_THIS_THREAD)
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

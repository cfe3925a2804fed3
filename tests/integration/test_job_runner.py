"""The local executor's job runner on the training contract with more than one instance: one process per host at
once, each with its own /opt/ml and a resourceconfig.json naming every host, channels replicated or sharded,
checkpoints given to every host and saved from every host, the model from the host that wrote it, and a job that
fails as soon as one host fails; the hosts named as SageMaker names them, their names resolving late. The container
is a stand-in `train` script (no MXNet), against S3 on moto."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from control_plane.aws import clients
from local.emulator import REGION, reset_moto
from local.executor.host_names import HostNames
from local.executor.jobs import Job, JobRunner

BUCKET = "job-runner"
# What each host's `train` does: records what it was given (and, with LOOK_AGAIN_AFTER, what its hosts' names resolve
# to at once and that many seconds later), writes a model and a checkpoint on the first host, and fails on the host
# named by FAIL_ON (after the others have started).
STAND_IN = """#!/usr/bin/env python3
import json, os, pathlib, socket, sys, time
root = pathlib.Path(os.environ["OPT_ML_ROOT"])
config = json.loads((root / "input/config/resourceconfig.json").read_text())
host, hosts = config["current_host"], config["hosts"]
data = root / "input/data"
seen = {c.name: sorted(f.name for f in c.iterdir()) for c in data.iterdir()}
restored = sorted(f.name for f in (root / "checkpoints").iterdir()) if (root / "checkpoints").is_dir() else []
def lookup(name):
    try:
        return socket.gethostbyname(name)
    except socket.gaierror as error:
        return error.strerror
names = []
if os.environ.get("LOOK_AGAIN_AFTER"):
    names.append({h: lookup(h) for h in hosts})
    time.sleep(float(os.environ["LOOK_AGAIN_AFTER"]))
    names.append({h: lookup(h) for h in hosts})
given = {"config": config, "seen": seen, "restored": restored, "names": names}
print("host", host, json.dumps(given), flush=True)
if os.environ.get("FAIL_ON") == host:
    time.sleep(0.5)
    (root / "output/failure").write_text(f"host {host} gave up")
    sys.exit(1)
if os.environ.get("FAIL_ON"):
    time.sleep(60)  # the runner stops it when the other host fails
if host == sorted(hosts)[0]:
    (root / "model/model.txt").write_text(f"written by {host}")
    (root / "checkpoints").mkdir(exist_ok=True)
    (root / "checkpoints/state.json").write_text("{}")
"""


@pytest.fixture
def s3(aws_env: dict[str, str], moto_endpoint: str) -> Any:
    reset_moto(moto_endpoint)
    clients.clear()
    client = clients.client("s3")
    client.create_bucket(Bucket=BUCKET)
    for name in ("a.rec", "b.rec", "c.rec"):
        client.put_object(Bucket=BUCKET, Key=f"data/train/{name}", Body=b"x")
    client.put_object(Bucket=BUCKET, Key="checkpoints/latest.params", Body=b"earlier attempt")
    yield client
    clients.clear()


@pytest.fixture
def runner(s3: Any, tmp_path: Path) -> JobRunner:
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "train").write_text(STAND_IN)
    (bin_folder / "train").chmod(0o755)
    return JobRunner(s3, {"AWS_REGION": REGION}, container_bin=bin_folder)


def training_job(tmp_path: Path, count: int, distribution: str = "FullyReplicated", **environment: str) -> Job:
    request = {
        "AlgorithmSpecification": {"TrainingImage": "detector:latest", "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/data/train",
                        "S3DataDistributionType": distribution,
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/model"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": count, "VolumeSizeInGB": 30},
        "CheckpointConfig": {"S3Uri": f"s3://{BUCKET}/checkpoints", "LocalPath": "/opt/ml/checkpoints"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        "Environment": environment,
    }
    return Job("training", "job-1", "arn:job-1", request, tmp_path / "job-1")


def given(job: Job) -> dict[str, dict[str, Any]]:
    """What each host's process printed it was given."""
    found = (re.search(r"\bhost (\S+) (\{.*\})$", line) for line in job.log.read_text().splitlines())
    return {match[1]: json.loads(match[2]) for match in found if match}


def archive_files(s3: Any, job: Job) -> dict[str, str]:
    key = job.model_artifacts().removeprefix(f"s3://{BUCKET}/")
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_a_two_instance_training_job_runs_one_process_per_host_as_sagemaker_does(
    runner: JobRunner, s3: Any, tmp_path: Path
) -> None:
    job = training_job(tmp_path, 2)

    runner.run(job)

    assert job.status == "Completed", job.failure_reason
    hosts = ["algo-1", "algo-2"]
    seen = given(job)
    assert sorted(seen) == hosts
    for host in hosts:
        assert seen[host]["config"] == {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}
        assert seen[host]["seen"] == {"train": ["a.rec", "b.rec", "c.rec"]}  # replicated
        assert seen[host]["restored"] == ["latest.params"]  # the earlier attempt's checkpoints on every host
        assert (job.root(host) / "input" / "config" / "resourceconfig.json").is_file()
    assert job.root(hosts[0]) != job.root(hosts[1])
    assert archive_files(s3, job) == {"model.txt": "written by algo-1"}
    saved = s3.list_objects_v2(Bucket=BUCKET, Prefix="checkpoints/")["Contents"]
    assert sorted(o["Key"] for o in saved) == ["checkpoints/latest.params", "checkpoints/state.json"]
    assert not (job.folder / "pid").exists()


def test_the_hosts_names_resolve_to_their_own_loopback_addresses_late_or_never(
    runner: JobRunner, s3: Any, tmp_path: Path
) -> None:
    # Given names that resolve 0.3 s after a process first asks, algo-3's never, and a request that would change that
    runner.host_names = HostNames(late=0.3, never=frozenset({"algo-3"}))
    job = training_job(tmp_path, 3, LOOK_AGAIN_AFTER="0.5", LOCAL_HOST_NAMES="{}")

    runner.run(job)

    # Then no name resolves at once; then each resolves to its host's own address, but algo-3's never
    assert job.status == "Completed", job.failure_reason
    unknown = "Name or service not known"
    for seen in given(job).values():
        assert seen["names"] == [
            {"algo-1": unknown, "algo-2": unknown, "algo-3": unknown},
            {"algo-1": "127.0.0.2", "algo-2": "127.0.0.3", "algo-3": unknown},
        ]


def test_a_sharded_channel_gives_each_host_its_share_of_the_objects(runner: JobRunner, s3: Any, tmp_path: Path) -> None:
    job = training_job(tmp_path, 2, distribution="ShardedByS3Key")

    runner.run(job)

    seen = given(job)
    shares = [seen[host]["seen"]["train"] for host in ("algo-1", "algo-2")]
    assert sorted(shares[0] + shares[1]) == ["a.rec", "b.rec", "c.rec"]
    assert all(shares)
    assert not set(shares[0]) & set(shares[1])


def test_one_host_that_fails_stops_the_others_and_fails_the_job_with_its_reason(
    runner: JobRunner, s3: Any, tmp_path: Path
) -> None:
    job = training_job(tmp_path, 2, FAIL_ON="algo-2")

    runner.run(job)

    assert job.status == "Failed"
    assert job.failure_reason == "AlgorithmError: host algo-2 gave up"
    # the other host was stopped, not awaited: it never got to write its model
    assert not any((job.root("algo-1") / "model").iterdir())
    assert not (job.folder / "pid").exists()


def test_a_one_instance_job_keeps_its_single_root(runner: JobRunner, s3: Any, tmp_path: Path) -> None:
    job = training_job(tmp_path, 1)

    runner.run(job)

    assert job.status == "Completed", job.failure_reason
    assert given(job)["algo-1"]["config"]["hosts"] == ["algo-1"]
    assert job.root("algo-1") == job.folder / "opt_ml"
    assert archive_files(s3, job) == {"model.txt": "written by algo-1"}


def test_a_training_job_s_lines_reach_cloudwatch_logs_one_stream_per_host_as_sagemaker_names_them(
    s3: Any, tmp_path: Path
) -> None:
    # Given a runner that writes to the emulated CloudWatch Logs, where the log group does not exist yet
    logs = clients.client("logs")
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "train").write_text(STAND_IN)
    (bin_folder / "train").chmod(0o755)
    runner = JobRunner(s3, {"AWS_REGION": REGION}, container_bin=bin_folder, logs=logs)
    job = training_job(tmp_path, 2)

    runner.run(job)

    # Then the group is created and each host's lines are in its own stream `<job>/<host>-<start epoch seconds>`
    assert job.status == "Completed", job.failure_reason
    assert job.started is not None
    start = int(job.started.timestamp())
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == [f"job-1/algo-1-{start}", f"job-1/algo-2-{start}"]
    events = logs.filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="job-1/")["events"]
    said = {e["logStreamName"]: e["message"] for e in events if e["message"].startswith("host ")}
    assert said[f"job-1/algo-1-{start}"].startswith("host algo-1 {")
    assert said[f"job-1/algo-2-{start}"].startswith("host algo-2 {")

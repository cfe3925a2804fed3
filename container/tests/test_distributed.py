"""Training on two hosts, as SageMaker runs a job with InstanceCount 2: two real `detector.train` processes on
loopback, each with its own /opt/ml and a resourceconfig.json naming both, MXNet's scheduler and servers among their
children. The hosts are named as SageMaker names them (algo-1, algo-2), and their names resolve late, as the local
executor makes them (local/executor/host_names.py; each binds its own loopback address, 127.0.0.2 and 127.0.0.3).
Every test has a hard deadline and kills only the process groups it started."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.executor.host_names import HostNames, hosts
from sam_stack.container import container_environment
from tests.conftest import TINY_HYPERPARAMETERS, training_root

HOSTS = hosts(2)
LATE = HostNames(late=0.5)  # every process waits for its peers' names: 0.2 s, then 0.4 s
DEADLINE = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Hosts:
    def __init__(self, splits: Path, tmp_path: Path, hyperparameters: dict[str, str], watchdog: int = 60) -> None:
        self.roots = {}
        for host in HOSTS:
            root = training_root(tmp_path / host, splits, hyperparameters)
            config = {"current_host": host, "hosts": list(HOSTS), "network_interface_name": "lo"}
            (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(config))
            self.roots[host] = root
        self.port, self.watchdog = 0, watchdog
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, only: str | None = None, names: HostNames = LATE, **extra: str) -> Hosts:
        self.port = free_port()  # a new job: its own scheduler
        for host, root in self.roots.items():
            if only not in (None, host):
                continue
            environment = container_environment(
                {},
                {
                    "OPT_ML_ROOT": str(root),
                    "DETECTOR_PS_PORT": str(self.port),
                    "DETECTOR_WATCHDOG_SECONDS": str(self.watchdog),
                    **names.environment(HOSTS),
                    **extra,
                },
            )
            self.processes[host] = subprocess.Popen(
                [sys.executable, "-m", "detector.train"], env=environment, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def wait(self) -> dict[str, tuple[int, str]]:
        deadline = time.monotonic() + DEADLINE
        done = {}
        for host, process in self.processes.items():
            try:
                out, _ = process.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill()
                out, _ = process.communicate()
                pytest.fail(f"host {host} did not finish within {DEADLINE} s:\n{out[-3000:]}")
            done[host] = (process.returncode, out)
        return done

    def kill(self, host: str | None = None) -> None:
        for name, process in self.processes.items():
            if host in (None, name) and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def cluster_of_two(splits: Path, tmp_path: Path) -> Iterator[Hosts]:
    hosts = Hosts(splits, tmp_path, {**TINY_HYPERPARAMETERS, "epochs": "2", "warmup_epochs": "0", "batch_size": "4"})
    yield hosts
    hosts.kill()


def checksum(output: str) -> str:
    [found] = re.findall(r"parameters host=\S+ checksum=(\S+)", output)
    return str(found)


def test_two_hosts_train_one_model_and_only_the_first_writes_it(cluster_of_two: Hosts) -> None:
    done = cluster_of_two.start().wait()

    (first_code, first), (second_code, second) = done[HOSTS[0]], done[HOSTS[1]]
    assert (first_code, second_code) == (0, 0), first[-3000:] + second[-3000:]
    # each waited for the names, then started its part of the parameter server
    for output in (first, second):
        assert "waiting for host names unresolved=algo-1,algo-2 attempt=1 " in output
        assert output.index("host names resolved hosts=algo-1,algo-2 attempts=") < output.index(
            "parameter server started"
        )
    # one model: the same weights on both hosts at the end
    assert checksum(first) == checksum(second)
    # the writer (the sorted first host) alone logs the epochs, checkpoints and exports
    assert len(re.findall(r"^epoch=", first, re.M)) == 2
    assert re.findall(r"^epoch=", second, re.M) == []
    writer, other = (cluster_of_two.roots[h] for h in HOSTS)
    assert (writer / "model" / "model-symbol.json").is_file()
    assert (writer / "checkpoints" / "state.json").is_file()
    assert not (other / "model").exists() or not any((other / "model").iterdir())
    assert not (other / "checkpoints").exists()


def replicate_checkpoints(hosts: Hosts) -> None:
    """What SageMaker does at a job's start with CheckpointConfig: every host gets the checkpoints in S3."""
    writer, other = (hosts.roots[h] for h in HOSTS)
    shutil.copytree(writer / "checkpoints", other / "checkpoints", dirs_exist_ok=True)


def test_a_distributed_run_resumes_from_its_checkpoint_on_every_host(cluster_of_two: Hosts) -> None:
    interrupted = cluster_of_two.start(DETECTOR_STOP_AFTER_EPOCHS="1").wait()
    assert {code for code, _ in interrupted.values()} == {1}
    for host in HOSTS:
        failure = (cluster_of_two.roots[host] / "output" / "failure").read_text()
        assert failure.startswith("stopped after epoch 1"), failure
    replicate_checkpoints(cluster_of_two)

    done = cluster_of_two.start().wait()

    (first_code, first), (second_code, second) = done[HOSTS[0]], done[HOSTS[1]]
    assert (first_code, second_code) == (0, 0), first[-3000:] + second[-3000:]
    assert "resumed from checkpoint epochs_done=1" in first
    assert "resumed from checkpoint epochs_done=1" in second
    assert re.findall(r"^epoch=(\d+)", first, re.M) == ["2"]
    assert checksum(first) == checksum(second)
    assert (cluster_of_two.roots[HOSTS[0]] / "model" / "model-symbol.json").is_file()


def test_hosts_that_would_resume_from_different_epochs_fail_together_with_the_reason(
    cluster_of_two: Hosts,
) -> None:
    cluster_of_two.start(DETECTOR_STOP_AFTER_EPOCHS="1").wait()
    # the other host keeps no checkpoint: it would start from epoch 0 while the writer resumes from 1

    done = cluster_of_two.start().wait()

    assert {code for code, _ in done.values()} == {1}
    for host in HOSTS:
        failure = (cluster_of_two.roots[host] / "output" / "failure").read_text()
        assert failure.startswith("the 2 hosts resume from different epochs"), failure
    assert not (cluster_of_two.roots[HOSTS[0]] / "model" / "model-symbol.json").exists()


def test_a_host_that_dies_fails_the_other_within_the_watchdogs_time(splits: Path, tmp_path: Path) -> None:
    hosts = Hosts(
        splits, tmp_path, {**TINY_HYPERPARAMETERS, "epochs": "50", "warmup_epochs": "0", "batch_size": "4"}, watchdog=20
    )
    try:
        hosts.start()
        first = hosts.processes[HOSTS[0]]
        assert first.stdout is not None
        while "epoch=1 " not in (first.stdout.readline() or "epoch=1 "):  # training is under way
            pass
        hosts.kill(HOSTS[1])

        code = first.wait(timeout=120)  # the hard deadline: well beyond the watchdog's 20 s

        assert code == 1
        failure = (hosts.roots[HOSTS[0]] / "output" / "failure").read_text()
        assert failure.startswith(f"host {HOSTS[0]}: no training step for")
        assert "another host died or hung" in failure
    finally:
        hosts.kill()


def test_a_host_whose_peer_never_joins_fails_within_the_watchdogs_time(splits: Path, tmp_path: Path) -> None:
    hosts = Hosts(splits, tmp_path, {**TINY_HYPERPARAMETERS, "batch_size": "4"}, watchdog=10)
    try:
        first = hosts.start(only=HOSTS[0]).processes[HOSTS[0]]

        code = first.wait(timeout=120)

        assert code == 1
        failure = (hosts.roots[HOSTS[0]] / "output" / "failure").read_text()
        assert failure.startswith(f"host {HOSTS[0]}: no training step for")
    finally:
        hosts.kill()


def test_hosts_whose_peers_name_never_resolves_fail_at_the_deadline_naming_it(splits: Path, tmp_path: Path) -> None:
    hosts = Hosts(splits, tmp_path, {**TINY_HYPERPARAMETERS, "batch_size": "4"})
    try:
        never = HostNames(late=0, never=frozenset({HOSTS[1]}))

        done = hosts.start(names=never, DETECTOR_HOST_RESOLUTION_SECONDS="1").wait()

        assert {code for code, _ in done.values()} == {1}
        for host, (_, output) in done.items():
            failure = (hosts.roots[host] / "output" / "failure").read_text()
            assert failure == (
                "host names did not resolve within 1 s: algo-2 (Name or service not known); the cluster's hosts "
                "never all came up (DETECTOR_HOST_RESOLUTION_SECONDS=1)"
            )
            assert "waiting for host names unresolved=algo-2 attempt=1 " in output
            assert "parameter server started" not in output
    finally:
        hosts.kill()

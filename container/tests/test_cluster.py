"""The launcher's decisions from fake resourceconfig.json files: no processes."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from detector import cluster, jobs

from local.executor import host_names


def config(tmp_path: Path, current: str, hosts: list[str], interface: str | None = "eth0") -> Path:
    path = tmp_path / "resourceconfig.json"
    body = {"current_host": current, "hosts": hosts, **({"network_interface_name": interface} if interface else {})}
    path.write_text(json.dumps(body))
    return path


def test_one_host_or_no_file_is_not_distributed(tmp_path: Path) -> None:
    assert not cluster.Cluster.load(tmp_path / "absent.json").distributed
    alone = cluster.Cluster.load(config(tmp_path, "algo-1", ["algo-1"]))
    assert (alone.distributed, alone.writer, alone.roles()) == (False, True, ("scheduler", "server"))


def test_the_sorted_first_host_schedules_and_writes_every_host_serves(tmp_path: Path) -> None:
    hosts = ["algo-3", "algo-1", "algo-2"]
    first = cluster.Cluster.load(config(tmp_path, "algo-1", hosts))
    other = cluster.Cluster.load(config(tmp_path, "algo-3", hosts))

    assert first.hosts == ("algo-1", "algo-2", "algo-3")
    assert (first.rank, first.writer, first.roles()) == (0, True, ("scheduler", "server"))
    assert (other.rank, other.writer, other.roles()) == (2, False, ("server",))
    assert other.scheduler == "algo-1"


def test_the_parameter_server_environment_names_the_scheduler_and_this_host_by_address(
    tmp_path: Path, late_names: Clock
) -> None:
    # SageMaker's names, resolved to each host's own loopback address (ps-lite resolves in C: it gets addresses)
    socket.gethostbyname("algo-1")  # algo-2 resolves 1 s after this first lookup
    late_names.now = 1.0
    second = cluster.Cluster.load(config(tmp_path, "algo-2", ["algo-2", "algo-1"], interface="lo")).resolved(0)

    environment = second.role_environment("server", port=9123)

    assert environment == {
        "DMLC_ROLE": "server",
        "DMLC_NUM_WORKER": "2",
        "DMLC_NUM_SERVER": "2",
        "DMLC_PS_ROOT_URI": "127.0.0.2",
        "DMLC_PS_ROOT_PORT": "9123",
        "DMLC_NODE_HOST": "127.0.0.3",
        "PS_VERBOSE": "0",
        "DMLC_INTERFACE": "lo",
    }
    with pytest.raises(ValueError, match="unexpected role"):
        second.role_environment("observer")


def test_the_parameter_server_environment_needs_the_hosts_resolved_first(tmp_path: Path) -> None:
    unresolved = cluster.Cluster.load(config(tmp_path, "algo-1", ["algo-1", "algo-2"]))

    with pytest.raises(ValueError, match="host 'algo-1' is not resolved"):
        unresolved.role_environment("worker")


class Clock:
    """Time for the resolver and the back-off alike: a sleep moves it on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def late_names() -> Iterator[Clock]:
    """algo-1 resolves at once, algo-2 1 s after the first lookup, algo-3 never: the local executor's names in this
    process."""
    clock = Clock()
    table = {
        "algo-1": {"address": "127.0.0.2", "after": 0.0},
        "algo-2": {"address": "127.0.0.3", "after": 1.0},
        "algo-3": {"address": "127.0.0.4", "after": None},
    }
    resolver = host_names.Resolver(table, clock=clock)
    resolver.install()
    yield clock
    resolver.uninstall()


def test_names_that_resolve_late_are_waited_for_with_sagemakers_back_off(
    late_names: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="detector")

    addresses = cluster.resolve(("algo-1", "algo-2"), 900, clock=late_names, sleep=late_names.sleep)

    assert addresses == {"algo-1": "127.0.0.2", "algo-2": "127.0.0.3"}
    # retrying's wait_exponential_multiplier=100: 2**1 * 100 ms first, doubling
    assert late_names.sleeps == [0.2, 0.4, 0.8]
    assert caplog.messages[0] == (
        "waiting for host names unresolved=algo-2 attempt=1 elapsed_seconds=0.0 wait_seconds=0.2"
    )
    assert caplog.messages[-1] == "host names resolved hosts=algo-1,algo-2 attempts=4 seconds=1.4"


def test_names_that_resolve_at_once_are_not_waited_for(late_names: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="detector")

    assert cluster.resolve(("algo-1",), 900, clock=late_names, sleep=late_names.sleep) == {"algo-1": "127.0.0.2"}
    assert (late_names.sleeps, caplog.messages) == ([], [])


def test_a_name_that_never_resolves_fails_at_the_deadline_naming_it(late_names: Clock) -> None:
    with pytest.raises(jobs.JobError) as failed:
        cluster.resolve(("algo-1", "algo-2", "algo-3"), 100, clock=late_names, sleep=late_names.sleep)

    assert str(failed.value) == (
        "host names did not resolve within 100 s: algo-3 (Name or service not known); the cluster's hosts never "
        "all came up (DETECTOR_HOST_RESOLUTION_SECONDS=100)"
    )
    # doubling up to 30 s between attempts, the last attempt at the deadline itself
    assert late_names.sleeps == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 19]
    assert late_names.now == pytest.approx(100)


def test_the_deadline_is_sagemakers_15_minutes_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster.RESOLUTION_ENV, raising=False)
    assert cluster.resolution_seconds() == 900
    monkeypatch.setenv(cluster.RESOLUTION_ENV, "2.5")
    assert cluster.resolution_seconds() == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(cluster.RESOLUTION_ENV, bad)
        with pytest.raises(jobs.JobError, match=f"DETECTOR_HOST_RESOLUTION_SECONDS='{bad}': not a number of seconds"):
            cluster.resolution_seconds()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"current_host": "algo-9", "hosts": ["algo-1"]}, "current_host 'algo-9' is not among its hosts"),
        ({"hosts": ["algo-1"]}, "not SageMaker's resource config"),
    ],
)
def test_a_resource_config_that_does_not_hold_together_fails_naming_it(
    tmp_path: Path, body: dict[str, object], says: str
) -> None:
    path = tmp_path / "resourceconfig.json"
    path.write_text(json.dumps(body))

    with pytest.raises(jobs.JobError, match=says):
        cluster.Cluster.load(path)


@pytest.mark.parametrize(("count", "hosts"), [(10, 2), (11, 2), (23, 3), (7, 4)])
def test_shards_are_equal_disjoint_and_the_same_permutation_everywhere(count: int, hosts: int) -> None:
    shards = [cluster.shard(count, rank, hosts, seed=42, epoch=3) for rank in range(hosts)]

    assert {len(s) for s in shards} == {count // hosts}  # equal step counts, whatever the remainder
    flat = [i for s in shards for i in s]
    assert len(set(flat)) == len(flat)  # disjoint
    assert shards == [cluster.shard(count, rank, hosts, seed=42, epoch=3) for rank in range(hosts)]  # reproducible
    assert cluster.shard(count, 0, hosts, seed=42, epoch=4) != shards[0] or count // hosts <= 1  # reshuffled per epoch


def test_the_global_batch_splits_over_the_hosts_or_fails_naming_both() -> None:
    assert cluster.per_host_batch(16, 2) == 8
    with pytest.raises(jobs.JobError, match="batch_size 10 does not split over 4 hosts: use a multiple of 4"):
        cluster.per_host_batch(10, 4)
    with pytest.raises(jobs.JobError, match="3 images cannot give each of 4 hosts one"):
        cluster.shard(3, 0, 4, seed=1, epoch=0)

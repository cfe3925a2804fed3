"""The launcher's decisions from fake resourceconfig.json files: no processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from detector import cluster, jobs


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


def test_the_parameter_server_environment_names_the_scheduler_and_this_host(tmp_path: Path) -> None:
    # loopback addresses resolve without DNS, as the local executor's hosts do
    second = cluster.Cluster.load(config(tmp_path, "127.0.0.3", ["127.0.0.3", "127.0.0.2"], interface="lo"))

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

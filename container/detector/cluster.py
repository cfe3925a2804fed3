"""The hosts of a training job, as SageMaker tells a bring-your-own container (`/opt/ml/input/config/
resourceconfig.json`: `current_host`, `hosts`, `network_interface_name`), and what MXNet's parameter server needs.

As SageMaker's own MXNet containers do: the hosts sorted, the first one runs the scheduler, every host runs a
server, and the training process is the worker. The first host is also the writer: it alone validates, logs the
epoch line, checkpoints and exports. Every host trains on its shard of the training set: one permutation, the
same on every host (seeded), cut into equal slices, so that every host runs the same number of steps (one extra
step on one worker would hang them all).
"""

from __future__ import annotations

import json
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from detector import jobs, paths

PS_PORT = 8000
ROLES = ("scheduler", "server", "worker")


def resource_config() -> Path:
    return paths.root() / "input" / "config" / "resourceconfig.json"


@dataclass(frozen=True)
class Cluster:
    current_host: str
    hosts: tuple[str, ...]
    interface: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Cluster:
        """The job's hosts; a file that is not there means one host (a local run)."""
        path = path or resource_config()
        if not path.is_file():
            return cls("algo-1", ("algo-1",))
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            hosts = tuple(sorted(str(h) for h in config["hosts"]))
            current = str(config["current_host"])
        except (ValueError, KeyError, TypeError) as error:
            raise jobs.JobError(
                f"{path.name}: not SageMaker's resource config ({type(error).__name__}: {error})"
            ) from None
        if not hosts or current not in hosts:
            raise jobs.JobError(f"{path.name}: current_host {current!r} is not among its hosts {list(hosts)}")
        return cls(current, hosts, config.get("network_interface_name"))

    @property
    def distributed(self) -> bool:
        return len(self.hosts) > 1

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def writer(self) -> bool:
        return self.rank == 0

    @property
    def scheduler(self) -> str:
        return self.hosts[0]

    def roles(self) -> tuple[str, ...]:
        """The parameter-server processes this host starts beside its worker."""
        return ("scheduler", "server") if self.writer else ("server",)

    def role_environment(self, role: str, port: int = PS_PORT) -> dict[str, str]:
        if role not in ROLES:
            raise ValueError(f"unexpected role {role!r}")
        environment = {
            "DMLC_ROLE": role,
            "DMLC_NUM_WORKER": str(len(self.hosts)),
            "DMLC_NUM_SERVER": str(len(self.hosts)),
            "DMLC_PS_ROOT_URI": socket.gethostbyname(self.scheduler),
            "DMLC_PS_ROOT_PORT": str(port),
            # the address this host's processes bind and announce (hosts that share a machine differ here)
            "DMLC_NODE_HOST": socket.gethostbyname(self.current_host),
            "PS_VERBOSE": "0",
        }
        if self.interface:
            environment["DMLC_INTERFACE"] = self.interface
        return environment


def per_host_batch(batch_size: int, hosts: int) -> int:
    """`batch_size` is the global batch (the schedule does not change with the hosts): an equal part on each."""
    if batch_size % hosts:
        raise jobs.JobError(f"batch_size {batch_size} does not split over {hosts} hosts: use a multiple of {hosts}")
    return batch_size // hosts


def shard(count: int, rank: int, hosts: int, *, seed: int, epoch: int) -> list[int]:
    """Host `rank`'s record indices for `epoch`: the same shuffle everywhere, cut into `hosts` equal slices (the
    `count % hosts` left over sit out this epoch, and others the next)."""
    order = permutation(count, seed, epoch)
    size = count // hosts
    if size == 0:
        raise jobs.JobError(f"train channel: {count} images cannot give each of {hosts} hosts one")
    return order[rank * size : (rank + 1) * size]


def permutation(count: int, seed: int, epoch: int) -> list[int]:
    """The record order of `epoch`: the same on every host and in every process."""
    order = list(range(count))
    random.Random(f"{seed}:{epoch}").shuffle(order)  # noqa: S311 (a data order, not a secret)
    return order

"""The hosts of a training job, as SageMaker tells a bring-your-own container (`/opt/ml/input/config/
resourceconfig.json`: `current_host`, `hosts`, `network_interface_name`), and what MXNet's parameter server needs.

As SageMaker's own MXNet containers do: the hosts sorted, the first one runs the scheduler, every host runs a
server, and the training process is the worker. The first host is also the writer: it alone validates, logs the
epoch line, checkpoints and exports. Every host trains on its shard of the training set: one permutation, the
same on every host (seeded), cut into equal slices, so that every host runs the same number of steps (one extra
step on one worker would hang them all).

SageMaker documents that the host names may not resolve at once while the cluster boots, and recommends a retry
policy; its training and MXNet toolkits retry `gethostbyname` for 15 minutes with exponential back-off (0.2 s, then
doubling, at most 30 s between attempts). Every host is resolved so, all of them under one deadline
(`DETECTOR_HOST_RESOLUTION_SECONDS`, 900 by default), before the parameter server starts; MXNet's ps-lite gets
addresses, not names (it resolves in C, outside any retry).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from detector import jobs, paths

PS_PORT = 8000
ROLES = ("scheduler", "server", "worker")
RESOLUTION_ENV = "DETECTOR_HOST_RESOLUTION_SECONDS"
RESOLUTION_SECONDS = 900.0  # sagemaker-training-toolkit's _dns_lookup: stop_max_delay 15 minutes
FIRST_WAIT, LONGEST_WAIT = 0.2, 30.0  # its wait_exponential_multiplier 100 ms (2**1 * 100 ms first), max 30 s


def resource_config() -> Path:
    return paths.root() / "input" / "config" / "resourceconfig.json"


@dataclass(frozen=True)
class Cluster:
    current_host: str
    hosts: tuple[str, ...]
    interface: str | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)

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

    def resolved(self, seconds: float | None = None) -> Cluster:
        """The same hosts with their addresses, once every name resolves (or a JobError naming those that do not)."""
        return replace(self, addresses=resolve(self.hosts, resolution_seconds() if seconds is None else seconds))

    def address(self, host: str) -> str:
        if host not in self.addresses:
            raise ValueError(f"host {host!r} is not resolved: Cluster.resolved() first")
        return self.addresses[host]

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
            "DMLC_PS_ROOT_URI": self.address(self.scheduler),
            "DMLC_PS_ROOT_PORT": str(port),
            # the address this host's processes bind and announce (hosts that share a machine differ here)
            "DMLC_NODE_HOST": self.address(self.current_host),
            "PS_VERBOSE": "0",
        }
        if self.interface:
            environment["DMLC_INTERFACE"] = self.interface
        return environment


def resolution_seconds() -> float:
    """How long the hosts may take to resolve: RESOLUTION_ENV, else SageMaker's toolkits' 15 minutes."""
    text = os.environ.get(RESOLUTION_ENV) or str(RESOLUTION_SECONDS)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise jobs.JobError(f"{RESOLUTION_ENV}={text!r}: not a number of seconds (0 or more)")
    return seconds


def resolve(
    hosts: tuple[str, ...],
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Every host's address, retried with back-off until `seconds` have passed since the first attempt."""
    start = clock()
    addresses: dict[str, str] = {}
    wait, attempt = FIRST_WAIT, 0
    while True:
        attempt += 1
        unresolved = _lookup([h for h in hosts if h not in addresses], addresses)
        elapsed = clock() - start
        if not unresolved:
            break
        if elapsed >= seconds:
            reasons = ", ".join(f"{host} ({error})" for host, error in unresolved.items())
            raise jobs.JobError(
                f"host names did not resolve within {seconds:g} s: {reasons}; the cluster's hosts never all came "
                f"up ({RESOLUTION_ENV}={seconds:g})"
            )
        pause = min(wait, LONGEST_WAIT, seconds - elapsed)
        waiting = {"unresolved": ",".join(unresolved), "attempt": attempt, "elapsed_seconds": f"{elapsed:.1f}"}
        jobs.event(jobs.log, "waiting for host names", **waiting, wait_seconds=f"{pause:.1f}")
        sleep(pause)
        wait *= 2
    if attempt > 1:
        jobs.event(jobs.log, "host names resolved", hosts=",".join(hosts), attempts=attempt, seconds=f"{elapsed:.1f}")
    return addresses


def _lookup(hosts: list[str], into: dict[str, str]) -> dict[str, str]:
    """Resolve `hosts` into `into`; what each of the others answered."""
    unresolved = {}
    for host in hosts:
        try:
            into[host] = socket.gethostbyname(host)
        except (OSError, UnicodeError) as error:
            unresolved[host] = str(error.args[-1] if error.args else error)
    return unresolved


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

"""MXNet's parameter server for a training job on many hosts: the scheduler and server processes this host
starts beside its worker (as SageMaker's MXNet toolkit starts them), a watchdog, and the agreement of all hosts.

A scheduler or server is a process that imports MXNet with `DMLC_ROLE` set; it serves until the workers finish.
Children are always reaped: on the way out they are terminated, then killed. A worker whose peers died or hung
blocks in its next push or pull forever; the watchdog ends the job with a reason instead, when no step has
completed for `DETECTOR_WATCHDOG_SECONDS` (default 600), long before SageMaker's MaxRuntimeInSeconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from detector import cluster, jobs, paths

PORT_ENV = "DETECTOR_PS_PORT"
WATCHDOG_ENV = "DETECTOR_WATCHDOG_SECONDS"
AGREEMENT_KEY = 999_999  # far from the trainer's keys (one per parameter, from 0)


def port() -> int:
    return int(os.environ.get(PORT_ENV) or cluster.PS_PORT)


class AllHosts(jobs.JobError):
    """A failure every host reaches at the same step (an agreed stop), so they can still part in order."""


class Session:
    """This host's part of the parameter server: its children, its worker's kvstore and its watchdog."""

    def __init__(self, hosts: cluster.Cluster) -> None:
        self.hosts = hosts
        self.children: list[subprocess.Popen[bytes]] = []
        self.store: Any = None
        self.watchdog: Watchdog | None = None

    def kvstore(self, kind: str) -> Any:
        """The worker's kvstore (`dist_sync` or `dist_device_sync`), watched from here on."""
        import mxnet as mx

        # watched from before the store exists: creating it waits until every host's processes have joined
        self.watchdog = Watchdog(self.hosts.current_host, self.children)
        self.store = mx.kv.create(kind)
        self.store.init(AGREEMENT_KEY, mx.nd.zeros(2))  # before the trainer's keys, in the same order everywhere
        return self.store

    def _sums(self, value: float) -> tuple[float, float]:
        """The sums of `value` and of its square over every host (a summed push, then a pull)."""
        import mxnet as mx

        out = mx.nd.zeros(2)
        self.store.push(AGREEMENT_KEY, mx.nd.array([value, value * value]))
        self.store.pull(AGREEMENT_KEY, out=out)
        total, squares = (float(x) for x in out.asnumpy())
        return total, squares

    def any(self, flag: bool) -> bool:
        """True on every host when it is true on any: the same stop decision everywhere."""
        total, _ = self._sums(1.0 if flag else 0.0)
        return total > 0

    def agree_on_start(self, epochs_done: int) -> None:
        """Every host resumes from the same epoch (SageMaker gives each the same checkpoints), or none trains:
        hosts that disagree would run different numbers of steps, and one extra step hangs them all."""
        total, squares = self._sums(float(epochs_done))
        count = len(self.hosts.hosts)
        # n * sum(x^2) = sum(x)^2 holds for equal values and only for them
        if abs(count * squares - total * total) > 0.5:
            raise AllHosts(
                f"the {count} hosts resume from different epochs (this host from {epochs_done}, "
                f"{total / count:g} on average): every host needs the same /opt/ml/checkpoints"
            )

    def close(self, goodbye: bool) -> None:
        """Say goodbye (every worker does, then the servers and the scheduler finish), or, when this host
        failed alone and its peers may never say theirs, leave without waiting for them."""
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.store is None:
            return
        from mxnet.base import _LIB, check_call

        handle, self.store.handle = self.store.handle, None  # freed once, here, whoever still holds the store
        if goodbye:
            check_call(_LIB.MXKVStoreFree(handle))


@contextmanager
def started(hosts: cluster.Cluster) -> Iterator[Session]:
    """This host's scheduler (on the first host) and server, and the worker's environment in this process."""
    session = Session(hosts)
    goodbye = False
    try:
        for role in hosts.roles():
            environment = {**os.environ, **hosts.role_environment(role, port())}
            session.children.append(subprocess.Popen([sys.executable, "-c", "import mxnet"], env=environment))
        os.environ.update(hosts.role_environment("worker", port()))
        jobs.event(jobs.log, "parameter server started", host=hosts.current_host, roles=",".join(hosts.roles()))
        yield session
        goodbye = True
    except AllHosts:
        goodbye = True  # a decision every host took at the same step ends in order
        raise
    finally:
        session.close(goodbye)
        reap(session.children, grace=20 if goodbye else 0)


def reap(children: list[subprocess.Popen[bytes]], grace: float = 20) -> None:
    """Let the scheduler and server finish with the workers, then make sure they are gone."""
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class Watchdog:
    """Fails the job when no step completes in time (a dead or hung peer): the reason where SageMaker reads it,
    the children killed, the process ended, rather than a job that hangs until its maximum run time."""

    def __init__(self, host: str, children: list[subprocess.Popen[bytes]], seconds: float | None = None) -> None:
        self.host, self.children = host, children
        self.seconds = seconds if seconds is not None else float(os.environ.get(WATCHDOG_ENV) or 600)
        self.last = time.monotonic()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="watchdog", daemon=True).start()

    def step(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(1):
            idle = time.monotonic() - self.last
            if idle > self.seconds:
                reason = (
                    f"host {self.host}: no training step for {idle:.0f} s: another host died or hung "
                    f"(the parameter server waits for every worker); {WATCHDOG_ENV}={self.seconds:.0f}"
                )
                jobs.write_failure(paths.failure_file(), reason)
                for child in self.children:
                    child.kill()
                os._exit(1)

"""The host names of a job, as SageMaker's cluster gives them: `algo-1`, `algo-2`, ... that may not resolve at once.

SageMaker names a job's hosts `algo-<n>` and documents that these names may not resolve at once while the cluster
boots ("We recommend adding a retry policy on hostname resolution operations"). The executor plays that: every
host binds its own loopback address (127.0.0.2 for algo-1, 127.0.0.3 for algo-2, ...), and its name resolves in a
job process only some seconds after the process first looked up one of the job's names, or never for a host told to
stay unresolved. Counted from the first lookup rather than from the job's start: a job process takes from 2 s
(importing MXNet) to many more on a loaded machine before it asks, and every run must meet the late names alike.

The names resolve nowhere else: the job processes' boot hook (local/boot/sitecustomize.py) answers them in
`socket.gethostbyname`, `gethostbyname_ex` and `getaddrinfo` from the map in `HOST_NAMES_ENV`. Native code
(MXNet's ps-lite, ZeroMQ) resolves through the C library and never sees them: the container hands it addresses.

Standard library only: the container's environment loads this file by path.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

HOST_NAMES_ENV = "LOCAL_HOST_NAMES"
FIRST_ADDRESS = 2  # 127.0.0.1 is the stack's own; algo-1 binds 127.0.0.2


def name(number: int) -> str:
    return f"algo-{number}"


def address(host: str) -> str:
    """The loopback address `algo-<n>` binds."""
    return f"127.0.0.{int(host.removeprefix('algo-')) - 1 + FIRST_ADDRESS}"


def hosts(count: int) -> tuple[str, ...]:
    """The names of `count` hosts, sorted as resourceconfig.json lists them (lexicographically: algo-10 < algo-2)."""
    return tuple(sorted(name(number) for number in range(1, count + 1)))


@dataclass(frozen=True)
class HostNames:
    """When the names of a job's hosts resolve in its processes: `late` seconds after a process first looks one
    up; never for the hosts in `never`."""

    late: float = 1.0
    never: frozenset[str] = field(default_factory=frozenset)

    def environment(self, names: Iterable[str]) -> dict[str, str]:
        """The boot hook's map for the processes of a job on `names`."""
        table = {host: {"address": address(host), "after": None if host in self.never else self.late} for host in names}
        return {HOST_NAMES_ENV: json.dumps(table, sort_keys=True)}


class UnknownYet(socket.gaierror):
    """What the C library says of a name no DNS server knows."""

    def __init__(self) -> None:
        super().__init__(socket.EAI_NONAME, "Name or service not known")


class Resolver:
    """`socket`'s name lookups, answering the job's host names from the map and any other name as before."""

    def __init__(self, table: dict[str, Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.table = {host.lower(): entry for host, entry in table.items()}
        self.clock = clock
        self.first: float | None = None  # when this process first looked up one of the job's names
        self.originals = (socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo)

    def lookup(self, host: object) -> str | None:
        """The address of one of the job's hosts (None for any other name); raises while it does not resolve."""
        if not isinstance(host, str | bytes):
            return None
        key = (host.decode() if isinstance(host, bytes) else host).lower()
        entry = self.table.get(key)
        if entry is None:
            return None
        now = self.clock()
        self.first = now if self.first is None else self.first
        after = entry.get("after")
        if after is None or now < self.first + float(after):
            raise UnknownYet
        return str(entry["address"])

    def gethostbyname(self, host: str) -> str:
        return self.lookup(host) or self.originals[0](host)

    def gethostbyname_ex(self, host: str) -> tuple[str, list[str], list[str]]:
        found = self.lookup(host)
        return (host, [], [found]) if found else self.originals[1](host)

    def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        return self.originals[2](self.lookup(host) or host, *args, **kwargs)

    def install(self) -> None:
        socket.gethostbyname = self.gethostbyname
        socket.gethostbyname_ex = self.gethostbyname_ex
        socket.getaddrinfo = self.getaddrinfo

    def uninstall(self) -> None:
        socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo = self.originals


def install_from_environment() -> Resolver | None:
    """The job's host names in this process's lookups, when the executor gave a map."""
    text = os.environ.get(HOST_NAMES_ENV)
    if not text:
        return None
    resolver = Resolver(json.loads(text))
    resolver.install()
    return resolver

"""The job processes' lookups of their hosts' names (local/executor/host_names.py, installed by the boot hook): the
names resolve some time after a process first asks, or never; other names as before (lookups need sockets)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from local.executor.host_names import HOST_NAMES_ENV, HostNames, Resolver


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    table = json.loads(
        HostNames(late=1.0, never=frozenset({"algo-2"})).environment(("algo-1", "algo-2"))[HOST_NAMES_ENV]
    )
    resolver = Resolver(table, clock=clock)
    resolver.install()
    yield clock
    resolver.uninstall()


def test_a_name_resolves_only_some_time_after_the_first_lookup_and_a_name_told_so_never(clock: Clock) -> None:
    for lookup in (socket.gethostbyname, socket.gethostbyname_ex, lambda name: socket.getaddrinfo(name, 80)):
        with pytest.raises(socket.gaierror, match="Name or service not known"):
            lookup("algo-1")
    clock.now += 0.9
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("algo-1")

    clock.now += 0.1

    assert socket.gethostbyname("ALGO-1") == "127.0.0.2"  # DNS names know no case
    assert socket.gethostbyname_ex("algo-1") == ("algo-1", [], ["127.0.0.2"])
    assert {info[4] for info in socket.getaddrinfo("algo-1", 80, socket.AF_INET)} == {("127.0.0.2", 80)}
    clock.now += 3600
    with pytest.raises(socket.gaierror, match="Name or service not known"):
        socket.gethostbyname("algo-2")


def test_other_names_are_looked_up_as_before(clock: Clock) -> None:
    assert socket.gethostbyname("127.0.0.9") == "127.0.0.9"
    assert socket.getaddrinfo(None, 80, socket.AF_INET)[0][4][1] == 80


def test_uninstalled_the_lookups_are_the_originals_again() -> None:
    before = socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo
    resolver = Resolver({"algo-1": {"address": "127.0.0.2", "after": 0}})
    resolver.install()
    assert socket.gethostbyname("algo-1") == "127.0.0.2"

    resolver.uninstall()

    assert (socket.gethostbyname, socket.gethostbyname_ex, socket.getaddrinfo) == before

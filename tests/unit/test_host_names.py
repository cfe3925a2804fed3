"""The local executor's host names: SageMaker's `algo-<n>`, each on its own loopback address, resolving late."""

from __future__ import annotations

import json

from local.executor import host_names
from local.executor.host_names import HOST_NAMES_ENV, HostNames


def test_hosts_are_named_and_sorted_as_resourceconfig_lists_them_each_on_its_own_address() -> None:
    names = host_names.hosts(11)

    assert names[:4] == ("algo-1", "algo-10", "algo-11", "algo-2")  # lexicographically, as SageMaker sorts them
    assert [host_names.address(n) for n in ("algo-1", "algo-2", "algo-11")] == ["127.0.0.2", "127.0.0.3", "127.0.0.12"]
    assert host_names.hosts(1) == ("algo-1",)


def test_the_boot_hooks_map_says_when_each_name_resolves() -> None:
    environment = HostNames(late=2.5, never=frozenset({"algo-2"})).environment(("algo-1", "algo-2"))

    assert json.loads(environment[HOST_NAMES_ENV]) == {
        "algo-1": {"address": "127.0.0.2", "after": 2.5},
        "algo-2": {"address": "127.0.0.3", "after": None},
    }

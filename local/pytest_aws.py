"""Pytest fixtures for tests that talk to the emulated AWS; both test trees load them with `pytest_plugins`.

Loading this plugin installs AWS's request constraints (local/constraints.py) and IAM's check (local/iam/enforce.py)
in the test process, and every test fails whose code made a request the service would refuse or the caller's role
does not allow, even when the code swallowed the error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import constraints
from local.emulator import aws_environment, start_moto
from local.iam import enforce

constraints.install()
enforce.install()


@pytest.fixture(autouse=True)
def _aws_constraints() -> Iterator[None]:
    constraints.take()
    enforce.take()
    yield
    # a test that provokes a violation or a denial on purpose takes it with constraints.take() or enforce.take()
    unexpected = constraints.take()
    if unexpected:
        pytest.fail("requests AWS would refuse:\n" + "\n".join(str(v) for v in unexpected), pytrace=False)
    denied = enforce.take()
    if denied:
        pytest.fail("requests the caller's role does not allow:\n" + "\n".join(str(d) for d in denied), pytrace=False)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment that points boto3 at the moto server, with throwaway credentials."""
    env = aws_environment(moto_endpoint)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env

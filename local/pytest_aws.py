"""Pytest fixtures for tests that talk to the emulated AWS; both test trees load them with `pytest_plugins`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.emulator import aws_environment, start_moto


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

"""An account short of a SageMaker quota, as a fresh account is: the run and the deploy fail at once, naming it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.drive import follow
from local.quotas import Quotas
from local.stack import LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run

PROCESSING = "ml.m5.xlarge for processing job usage"
ENDPOINT = "ml.m5.large for endpoint usage"


@pytest.fixture
def account(stack: LocalStack) -> Iterator[Quotas]:
    """The stack's quotas, for a test to lower; what was applied before comes back after it."""
    applied = dict(stack.quotas.applied)
    yield stack.quotas
    stack.quotas.applied.clear()
    stack.quotas.applied.update(applied)


def test_a_run_over_a_quota_fails_within_a_minute_naming_it(stack: LocalStack, api: Api, account: Quotas) -> None:
    # Given an account with no ml.m5.xlarge processing instances (a fresh account's default)
    account.apply(PROCESSING, 0)

    # When a run starts
    started = time.monotonic()
    run_id = start_run(api, {"MapThreshold": 0.0})
    detail = follow(api, run_id, timeout=60)

    # Then its first job is refused at once (no capacity retries), and GET /runs/{id} names the quota
    assert time.monotonic() - started < 60
    assert detail["status"] == "Failed"
    [preprocess] = detail["steps"]
    assert (preprocess["name"], preprocess["status"]) == ("Preprocess", "Failed")
    reason = preprocess["failure_reason"]
    assert "ResourceLimitExceeded" in reason
    assert f"The account-level service limit '{PROCESSING}' is 0 Instances" in reason


def test_a_deploy_over_a_quota_is_a_429_naming_it_and_leaves_nothing_behind(
    stack: LocalStack, api: Api, account: Quotas
) -> None:
    # Given an approved model, and an account with no ml.m5.large endpoint instances
    detail = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert detail["status"] == "Succeeded", detail
    version = int(detail["model"]["version"])
    assert api.call("POST", f"/models/{version}/approve", {"comment": "good enough"})[0] == 200
    models, configs = set(stack.hosting.models), set(stack.hosting.configs)
    account.apply(ENDPOINT, 0)

    # When it is deployed
    status, refused = api.call("POST", f"/models/{version}/deploy")

    # Then the deploy is refused with SageMaker's message, and no model or endpoint config of it is left
    assert status == 429, refused
    assert f"The account-level service limit '{ENDPOINT}' is 0 Instances" in refused["error"]["message"]
    assert set(stack.hosting.models) == models
    assert set(stack.hosting.configs) == configs
    assert api.call("GET", "/endpoint")[0] == 404

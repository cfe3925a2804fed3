"""Deployments that fail on SageMaker's side, through the route: a creation that fails is replaced by the next deploy
with nothing left of it, and an update that fails leaves the old version serving and says why. A model fails as on
SageMaker: its model data is not an archive the hosting can extract, so its container never comes up."""

from __future__ import annotations

from typing import Any

import pytest

from local.drive import endpoint_until, follow
from local.stack import LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run

SETTLED = {"InService", "Failed"}


def registered_and_approved(api: Api) -> int:
    detail = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert detail["status"] == "Succeeded", detail
    version = int(detail["model"]["version"])
    assert api.call("POST", f"/models/{version}/approve", {"comment": "recovery test"})[0] == 200
    return version


def break_model_data(stack: LocalStack, api: Api, version: int) -> None:
    """Overwrite the version's model.tar.gz with bytes that are no archive (a damaged upload)."""
    url = api.call("GET", f"/models/{version}")[1]["model_data_url"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    stack.aws["s3"].put_object(Bucket=bucket, Key=key, Body=b"not a tar archive")


@pytest.fixture(scope="module")
def versions(stack: LocalStack, api: Api) -> dict[str, int]:
    """Two approved versions: `broken` (its container cannot start) and `good`."""
    broken, good = registered_and_approved(api), registered_and_approved(api)
    break_model_data(stack, api, broken)
    return {"broken": broken, "good": good}


def leftovers(stack: LocalStack) -> tuple[list[str], list[str]]:
    sagemaker = stack.client("sagemaker")
    configs = [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
    models = [m["ModelName"] for m in sagemaker.list_models()["Models"]]
    return sorted(configs), sorted(models)


def test_a_failed_creation_is_replaced_by_the_next_deploy_and_nothing_is_left_of_it(
    stack: LocalStack, api: Api, versions: dict[str, int]
) -> None:
    # Given a deploy whose creation fails: the endpoint is Failed, saying why
    assert api.call("POST", f"/models/{versions['broken']}/deploy")[0] == 202
    failed = endpoint_until(api, lambda s: s["status"] in SETTLED)
    assert failed["status"] == "Failed", failed
    assert "cannot be extracted" in failed["failure_reason"]

    # When a good version is deployed (a Failed endpoint takes only DeleteEndpoint on SageMaker)
    status, answer = api.call("POST", f"/models/{versions['good']}/deploy")

    # Then the endpoint is created again and serves it
    assert status == 202, answer
    served = endpoint_until(api, lambda s: s["status"] in SETTLED)
    assert (served["status"], served["version"]) == ("InService", versions["good"]), served
    # and only what it serves is left: the failed creation's config and model are gone
    assert leftovers(stack) == ([served["endpoint_config"]], [served["model"]])
    actions = [(e["action"]["S"], e["details"]["M"].get("how", {}).get("S")) for e in stack.audit()]
    assert ("delete", None) in actions
    assert ("deploy", "recreate") in actions


def test_an_update_that_fails_leaves_the_old_version_serving_and_the_route_says_why(
    api: Api, versions: dict[str, int]
) -> None:
    # Given the endpoint serving the good version
    serving = endpoint_until(api, lambda s: s["status"] in SETTLED)
    if (serving["status"], serving["version"]) != ("InService", versions["good"]):
        assert api.call("POST", f"/models/{versions['good']}/deploy")[0] == 202
        serving = endpoint_until(api, lambda s: s["status"] == "InService" and s["version"] == versions["good"])

    # When the broken version is deployed over it
    status, answer = api.call("POST", f"/models/{versions['broken']}/deploy")
    assert status == 202, answer
    assert answer["version"] == versions["good"]  # served until the update is in service, or failed

    # Then the update fails, and the endpoint is InService on the good version, with the reason
    after: dict[str, Any] = endpoint_until(api, lambda s: s["status"] != "Updating")
    assert (after["status"], after["version"], after["deploying"]) == ("InService", versions["good"], None)
    assert after["endpoint_config"] == serving["endpoint_config"]
    assert "cannot be extracted" in (after["failure_reason"] or "")

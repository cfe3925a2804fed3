"""A restarted local stack keeps what a user registered: its own module, so that no other stack is running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local import drive
from local.drive import endpoint_until, follow
from local.stack import LOCAL_USER_KEY, LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import ingest, start_run, start_stack


def test_a_restarted_stack_keeps_its_registered_models_and_its_endpoint(tmp_path: Path) -> None:
    # Given a stack that registered, approved and deployed a model, then stopped
    first = start_stack(tmp_path, persist=True)
    try:
        ingest(first, tmp_path / "dataset")
        api = drive.api(first.api.url, LOCAL_USER_KEY)
        run_id = start_run(api, {"MapThreshold": 0.0})
        model = follow(api, run_id)["model"]
        api.call("POST", f"/models/{model['version']}/approve", {"comment": "before the restart"})
        assert api.call("POST", f"/models/{model['version']}/deploy")[0] == 202
        in_service(api)
    finally:
        first.stop()

    # When it starts again
    second = LocalStack(work=tmp_path, persist=True, function_log=tmp_path / "functions.log").start()
    try:
        api = drive.api(second.api.url, LOCAL_USER_KEY)
        status, models = api.call("GET", "/models")
        _, run = api.call("GET", f"/runs/{run_id}")
        # the endpoint comes back, serving the same version (`make up` after `make down`)
        endpoint = in_service(api)
    finally:
        second.stop()

    # Then the model is there, still approved, and so is the run that made it
    assert status == 200
    assert [(m["version"], m["approval_status"]) for m in models["models"]] == [(1, "Approved")]
    assert run["status"] == "Succeeded"
    assert run["model"]["version"] == 1
    assert endpoint["version"] == 1


def in_service(api: Api) -> dict[str, Any]:
    return endpoint_until(api, lambda state: state["status"] == "InService")

"""An approver decides with evidence: a second run is judged against the approved model on the same images, the
Slack request carries the comparison and the picture, and the API keeps the history. Its own stack (this
module's), so that the first run finds no approved model."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import yaml

from local.drive import approval_request, follow, model_until, press
from local.iam import users
from local.stack import SLACK_APPROVER, LocalStack
from sam_stack.client import Api
from tests.e2e.conftest import start_run, sync_config


def fetch(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        body: bytes = response.read()
        return body


def set_min_improvement(stack: LocalStack, margin: float | None) -> None:
    """Change model_registry.min_improvement in SSM and wait until the synced definition passes it to Evaluate."""
    config = yaml.safe_load(stack.aws["ssm"].get_parameter(Name=stack.values["ConfigParameter"])["Parameter"]["Value"])
    config["model_registry"]["min_improvement"] = margin

    def passed(definition: dict[str, Any]) -> bool:
        steps = {s["Name"]: s for s in definition["Steps"]}
        arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
        return ("--min-improvement" in arguments) == (margin is not None)

    sync_config(stack, yaml.safe_dump(config, sort_keys=False), passed)


def image_of(message: dict[str, Any]) -> str:
    [image] = [b for b in message["blocks"] if b["type"] == "image"]
    return str(image["slack_file"]["id"])


def test_a_second_run_is_judged_against_the_approved_model_and_the_history_shows_who_decided(
    stack: LocalStack, api: Api
) -> None:
    # Given a first run, with nothing approved yet
    first = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert first["status"] == "Succeeded", first
    assert first["evaluation"]["champion"]["present"] is False
    assert first["evaluation"]["champion"]["reason"] == "no approved model in the group"
    assert first["started_by"]["actor"] == users.RUNNER.arn  # tests.e2e.conftest.start_run starts as the runner
    assert first["started_by"]["source"] == "api"
    v1 = first["model"]["version"]
    # its request carries the picture, uploaded through Slack's file upload, and says there is no champion
    message = approval_request(stack, v1)
    uploaded = stack.slack.files[image_of(message)]
    assert uploaded.completed
    assert fetch(stack.slack.file_url(uploaded), {"Authorization": "Bearer xoxb-local"}).startswith(b"\x89PNG")
    assert "no champion to compare with" in str(message["text"])
    # and is approved from Slack
    code, _ = press(stack, message, "approve", reply_to="a/1")
    assert code == 200
    model_until(api, v1, "Approved", timeout=30)

    # When a second run starts
    second = follow(api, start_run(api, {"MapThreshold": 0.0}))

    # Then its evaluation names the approved model as champion, scored on the same test images: the figure it got
    # in its own run
    assert second["status"] == "Succeeded", second
    champion = second["evaluation"]["champion"]
    assert (champion["present"], champion["version"]) == (True, str(v1))
    assert champion["map"] == first["evaluation"]["metrics"]["map"]["value"]
    assert second["evaluation"]["counts"]["images"] == first["evaluation"]["counts"]["images"]
    difference = second["evaluation"]["comparison"]["map_difference"]
    assert difference == round(second["evaluation"]["metrics"]["map"]["value"] - champion["map"], 6)
    # and its Slack request shows the comparison beside the picture
    request = approval_request(stack, second["model"]["version"])
    assert f"against champion v{v1}'s {champion['map']:.3f} on the same images ({difference:+.3f})" in str(
        request["text"]
    )
    assert stack.slack.files[image_of(request)].completed

    # When min_improvement asks for more than any model can gain, a third run is not registered
    set_min_improvement(stack, 1.0)
    try:
        third = follow(api, start_run(api, {"MapThreshold": 0.0}))
    finally:
        set_min_improvement(stack, None)

    # Then it failed, and its reason gives both figures
    assert third["status"] == "Failed", third
    assert third["model"] is None
    third_map = third["evaluation"]["metrics"]["map"]["value"]
    reason = third["failure_reason"]
    below = f"Test mAP {third_map} is below the threshold 0.0 or the config's floor 0.0"
    assert reason.startswith(f"{below} or does not beat the champion")
    assert f"champion v{v1} test mAP {champion['map']} + min_improvement 1.0" in reason

    # And the history: the decision on v1 (who, from where), the run that made it, links to its results
    history_shows_the_decision(stack, api, first)


def history_shows_the_decision(stack: LocalStack, api: Api, run: dict[str, Any]) -> None:
    """The model `run` registered shows the Slack decision on it (who, from where), the run, links to its results,
    and the audit trail has that one decision."""
    version = run["model"]["version"]
    status, model = api.call("GET", f"/models/{version}")
    assert status == 200
    [decision] = model["decisions"]
    assert (decision["decision"], decision["source"]) == ("approve", "slack")
    assert SLACK_APPROVER in decision["actor"]
    assert (model["run_id"], model["started_by"]) == (run["run_id"], run["started_by"])
    assert fetch(model["artefacts"]["predictions_png"]).startswith(b"\x89PNG")
    assert fetch(model["artefacts"]["training_curves_png"]).startswith(b"\x89PNG")
    assert json.loads(fetch(model["artefacts"]["evaluation_json"]))["metrics"] == run["evaluation"]["metrics"]
    assert len(fetch(model["artefacts"]["model_archive"])) > 1000
    status, trail = api.call("GET", f"/audit?subject=model%23{stack.group}/{version}")
    assert status == 200
    assert [(e["action"], e["source"]) for e in trail["entries"]] == [("approve", "slack")]

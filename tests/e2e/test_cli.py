"""`scratch-detector` against the local stack: every command, as the local users (--local --as) and with boto3's
default credential chain (--url and the AWS_* variables), its tables, its --json and its exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local import drive
from local.stack import LOCAL_READER_KEY, LOCAL_USER_KEY, LocalStack

REPO = Path(__file__).resolve().parents[2]
Result = subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def state_file(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local stack's state file, as `make up` writes it (local/daemon.py)."""
    path = tmp_path_factory.mktemp("cli") / "stack.json"
    path.write_text(json.dumps({"pid": 0, "api": stack.api.url}))
    return path


def scratch_detector(*args: str, env: dict[str, str] | None = None) -> Result:
    """`scratch-detector ARGS...` in its own process (the stack's functions, in this one, print to its stdout)."""
    # rich's tables at a width that keeps every cell whole
    inherited = {k: v for k, v in os.environ.items() if not (env and k in {"AWS_PROFILE", "AWS_SESSION_TOKEN"})}
    environment = {**inherited, "COLUMNS": "250", **(env or {})}
    command = [sys.executable, "-m", "scratch_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO, timeout=600, check=False)


def cli(state_file: Path, user: str, *args: str) -> Result:
    """`scratch-detector --local --as USER ARGS...`"""
    return scratch_detector("--local", "--state-file", str(state_file), "--as", user, *args)


def as_json(result: Result) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def api_answer(stack: LocalStack, path: str) -> Any:
    status, found = drive.api(stack.api.url, LOCAL_USER_KEY).call("GET", path)
    assert status == 200, found
    return found


def test_a_run_started_and_followed_ends_with_its_result_and_its_model_is_decided_and_deployed(
    stack: LocalStack, state_file: Path
) -> None:
    # Given a run started by the runner
    started = as_json(cli(state_file, "runner", "runs", "start", "-p", "MapThreshold=0.0", "--display-name", "cli",
                          "--description", "from the command line", "--json"))  # fmt: skip
    run_id = started["run_id"]

    # When the runner follows it
    followed = cli(state_file, "runner", "runs", "follow", run_id, "--every", "0.5")

    # Then each step was shown as it changed, then the result: Succeeded, its mAP, its model and its cost; exit 0
    assert followed.returncode == 0, followed.stderr
    assert "Train Succeeded" in followed.stdout
    assert f"run            {run_id} Succeeded" in followed.stdout
    detail = api_answer(stack, f"/runs/{run_id}")
    version = detail["model"]["version"]
    assert f"model          v{version} PendingManualApproval" in followed.stdout
    assert "test mAP       " in followed.stdout
    assert "cost           " in followed.stdout

    # and the reader sees it in the list and in detail, as tables and as the API's JSON
    listed = cli(state_file, "reader", "runs", "list", "--status", "Succeeded")
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout
    assert as_json(cli(state_file, "reader", "runs", "list", "--json")) == api_answer(stack, "/runs")
    shown = cli(state_file, "reader", "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "Evaluate" in shown.stdout
    assert "Succeeded" in shown.stdout
    # (the artefacts' presigned URLs are signed anew on every read)
    assert without_artefacts(as_json(cli(state_file, "reader", "runs", "show", run_id, "--json"))) == (
        without_artefacts(api_answer(stack, f"/runs/{run_id}"))
    )

    # When the reader tries to approve its model, Then the API refuses: its code and message on stderr, exit 1
    refused = cli(state_file, "reader", "models", "approve", str(version), "--comment", "looks fine")
    assert refused.returncode == 1
    assert "error: " in refused.stderr
    assert "not authorized" in refused.stderr.lower() or "AccessDenied" in refused.stderr
    assert "(HTTP 403)" in refused.stderr
    assert api_answer(stack, f"/models/{version}")["approval_status"] == "PendingManualApproval"

    # When the approver rejects it, then approves it, and the deployer deploys it
    rejected = as_json(
        cli(state_file, "approver", "models", "reject", str(version), "--comment", "first look", "--json")
    )
    approved = cli(state_file, "approver", "models", "approve", str(version), "--comment", "second look")
    deployed = cli(state_file, "deployer", "models", "deploy", str(version))

    # Then each is recorded, in the model's decisions and the audit trail
    assert rejected["approval_status"] == "Rejected"
    assert approved.returncode == 0, approved.stderr
    assert "Approved" in approved.stdout
    assert deployed.returncode == 0, deployed.stderr
    model = as_json(cli(state_file, "reader", "models", "show", str(version), "--json"))
    assert [d["decision"] for d in model["decisions"]] == ["reject", "approve"]
    assert as_json(cli(state_file, "reader", "models", "list", "--json")) == api_answer(stack, "/models")
    models = cli(state_file, "reader", "models", "list", "--status", "Approved")
    assert f"{version}" in models.stdout
    shown_model = cli(state_file, "reader", "models", "show", str(version))
    assert "second look" in shown_model.stdout
    trail = cli(state_file, "reader", "audit", "--subject", f"run#{run_id}")
    assert trail.returncode == 0, trail.stderr
    assert "start" in trail.stdout
    endpoint = cli(state_file, "reader", "endpoint", "--json")
    assert as_json(endpoint)["name"] == api_answer(stack, "/endpoint")["name"]
    assert cli(state_file, "reader", "endpoint").returncode == 0


def without_artefacts(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k != "artefacts"}


def test_a_stopped_run_follows_to_exit_4_and_is_retried(stack: LocalStack, state_file: Path) -> None:
    # Given a long run, training
    started = as_json(cli(state_file, "runner", "runs", "start", "-p", "NumEpochs=500", "--json"))
    run_id = started["run_id"]
    drive.follow(drive.api(stack.api.url, LOCAL_USER_KEY), run_id, until_status={"Executing"}, timeout=30)

    # When the runner follows it while it trains, and stops it once its training job has logged an epoch
    following = subprocess.Popen(
        [sys.executable, "-m", "scratch_cli", "--local", "--state-file", str(state_file), "--as", "runner",
         "runs", "follow", run_id, "--every", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "250"}, cwd=REPO,
    )  # fmt: skip
    progress = wait_for_progress(stack, run_id)
    stopped = cli(state_file, "runner", "runs", "stop", run_id)
    out, err = following.communicate(timeout=300)

    # Then the follow showed the epochs as `epoch N/500` with the time left, and ended on Stopped, exit 4
    assert progress["total"] == 500
    assert re.search(r"^  Train  epoch [0-9]+/500  loss .*(left|minute)", out, re.MULTILINE), out
    assert stopped.returncode == 0, stopped.stderr
    assert following.returncode == 4, err
    assert f"run            {run_id} Stopped" in out

    # When it is retried, Then it executes again; and it is stopped once more
    retried = as_json(cli(state_file, "runner", "runs", "retry", run_id, "--json"))
    assert retried["status"] == "Executing"
    assert cli(state_file, "runner", "runs", "stop", run_id).returncode == 0


def wait_for_progress(stack: LocalStack, run_id: str, timeout: float = 180) -> dict[str, Any]:
    """GET /runs/{run_id}'s progress, once its Train step has logged an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = api_answer(stack, f"/runs/{run_id}").get("progress")
        if progress:
            return dict(progress)
        time.sleep(1)
    raise AssertionError(f"run {run_id}: no epoch progress within {timeout:.0f} s")


def test_the_default_credential_chain_signs_for_a_url_and_config_is_the_apis(stack: LocalStack, tmp_path: Path) -> None:
    # Given the reader's keys in the AWS_* variables (boto3's default chain, no config file) and the API's URL
    keys = {
        "AWS_ACCESS_KEY_ID": LOCAL_READER_KEY,
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }

    # When the config is read, as JSON and as a table
    found = scratch_detector("--url", stack.api.url, "--region", "us-east-1", "config", "--json", env=keys)
    table = scratch_detector("--url", stack.api.url, "--region", "us-east-1", "config", env=keys)

    # Then it is the API's answer
    assert json.loads(found.stdout) == api_answer(stack, "/config")
    assert table.returncode == 0, table.stderr
    assert stack.values["ConfigParameter"] in table.stdout


def test_an_unreachable_api_exits_3(state_file: Path, tmp_path: Path) -> None:
    # Given a state file naming a port nothing listens on
    gone = tmp_path / "stack.json"
    gone.write_text(json.dumps({"pid": 0, "api": "http://127.0.0.1:9"}))

    # When the endpoint is asked for
    result = scratch_detector("--local", "--state-file", str(gone), "endpoint")

    # Then exit 3, naming the URL
    assert result.returncode == 3
    assert "Unreachable" in result.stderr
    assert "127.0.0.1:9" in result.stderr

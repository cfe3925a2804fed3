"""Start a training run on a deployed stack through its API, as a user would (SigV4, the caller's IAM identity)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

from rollout.environments import Environment, RolloutError
from rollout.stack import deployed
from scratch_cli import calls, target


def start_run(
    env: Environment, session: boto3.Session, *, idempotency_key: str | None, description: str
) -> dict[str, Any]:
    """POST /runs on `env`'s stack, signed with `session`, through the command line's client (scratch_cli)."""
    stack = deployed(session.client("cloudformation"), env.stack_name)
    if stack is None:
        raise RolloutError(f"stack {env.stack_name} is not deployed: run `make deploy ENV={env.name}` first")
    try:
        api = target.signed(stack.api_url, session)
        run = calls.start_run(api, idempotency_key=idempotency_key, description=description)
    except (target.TargetError, calls.ApiError) as error:
        raise RolloutError(f"POST /runs: {error}") from None
    run["links"] = {"api": f"{stack.api_url}/runs/{run['run_id']}"}
    report(env, run)
    return run


def report(env: Environment, run: dict[str, Any]) -> None:
    lines = [
        f"Training run {run['run_id']} started on {env.stack_name}",
        f"  execution: {run['execution_arn']}",
        f"  status:    GET {run['links']['api']}  (IAM-signed)",
        f"  follow:    scratch-detector --env {env.name} runs follow {run['run_id']}",
        f"  CLI:       aws sagemaker describe-pipeline-execution --pipeline-execution-arn {run['execution_arn']}",
    ]
    print("\n".join(lines))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # the workflow run's page shows it
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(
                f"### Training run on `{env.stack_name}`\n\n"
                f"- run: `{run['run_id']}`, status: `GET {run['links']['api']}` (IAM-signed)\n"
                f"- execution ARN: `{run['execution_arn']}`\n"
            )

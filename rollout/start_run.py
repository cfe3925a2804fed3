"""Start a training run on a deployed stack through its API, as a user would (SigV4, the caller's IAM identity)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

from rollout.environments import Environment, RolloutError
from rollout.stack import deployed
from sam_stack.client import Api


def start_run(
    env: Environment, session: boto3.Session, *, idempotency_key: str | None, description: str
) -> dict[str, Any]:
    stack = deployed(session.client("cloudformation"), env.stack_name)
    if stack is None:
        raise RolloutError(f"stack {env.stack_name} is not deployed: run `make deploy ENV={env.name}` first")
    credentials = session.get_credentials()
    if credentials is None:
        raise RolloutError("no AWS credentials: configure a profile or the AWS_* variables")
    frozen = credentials.get_frozen_credentials()
    api = Api(
        url=stack.api_url,
        access_key=str(frozen.access_key),
        secret_key=str(frozen.secret_key),
        session_token=frozen.token,
        region=str(session.region_name),
    )
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    status, body = api.call("POST", "/runs", {"description": description}, headers=headers)
    if status not in {200, 201}:
        raise RolloutError(f"POST /runs answered {status}: {body}")
    run = dict(body)
    run["links"] = {"api": f"{stack.api_url}/runs/{run['run_id']}"}
    report(env, run)
    return run


def report(env: Environment, run: dict[str, Any]) -> None:
    lines = [
        f"Training run {run['run_id']} started on {env.stack_name}",
        f"  execution: {run['execution_arn']}",
        f"  status:    GET {run['links']['api']}  (IAM-signed, e.g. curl --aws-sigv4)",
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

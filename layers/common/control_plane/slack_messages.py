"""The Slack messages besides the approval request (control_plane.approval_request): a failed run, a decision that
could not be made, an invalid config."""

from __future__ import annotations

from typing import Any


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def run_failed(pipeline: str, run_id: str, step: str | None, reason: str | None) -> tuple[str, list[dict[str, Any]]]:
    where = f"step *{step}*" if step else "the run"
    text = f"Run {run_id} of {pipeline} failed at {step or 'an unknown step'}: {reason or 'no reason given'}"
    return text, [section(f":x: Run `{run_id}` of *{pipeline}* failed in {where}\n>{reason or 'no reason given'}")]


def decision_failed(
    group: str, version: int, decision: str, user_id: str, reason: str
) -> tuple[str, list[dict[str, Any]]]:
    text = f"<@{user_id}> clicked {decision} on {group} v{version}, but the decision was not made: {reason}"
    return text, [section(f":warning: {text}")]


def config_invalid(parameter: str, version: int | None, problems: list[str]) -> tuple[str, list[dict[str, Any]]]:
    listed = "\n".join(f"• `{p}`" for p in problems[:20])
    text = f"Pipeline config {parameter} (version {version}) is invalid; the pipeline was left as it was"
    return text, [section(f":warning: {text}:\n{listed}")]

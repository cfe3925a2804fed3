"""The Slack messages: a registered model with Approve/Reject buttons, a failed run, a decision, an alert."""

from __future__ import annotations

import json
from typing import Any

from control_plane.models import DecisionResult, ModelSummary

APPROVE, REJECT = "approve", "reject"


def button_value(group: str, version: int) -> str:
    return json.dumps({"group": group, "version": version}, sort_keys=True)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def model_registered(group: str, model: ModelSummary, threshold: str | None) -> tuple[str, list[dict[str, Any]]]:
    score = "unknown" if model.map is None else f"{model.map:.3f}"
    bar = f" (threshold {threshold})" if threshold else ""
    text = f"Model {group} v{model.version} is waiting for approval: test mAP@0.5 {score}{bar}, run {model.run_id}"
    value = button_value(group, model.version)
    blocks = [
        _section(
            f"*{group} v{model.version}* is waiting for approval\n*test mAP@0.5:* {score}{bar}\n*run:* `{model.run_id}`"
        ),
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "value": value,
                    "text": {"type": "plain_text", "text": "Approve"},
                },
                {
                    "type": "button",
                    "action_id": REJECT,
                    "style": "danger",
                    "value": value,
                    "text": {"type": "plain_text", "text": "Reject"},
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Reject this model?"},
                        "text": {"type": "plain_text", "text": f"{group} v{model.version} will be rejected."},
                        "confirm": {"type": "plain_text", "text": "Reject"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                },
            ],
        },
    ]
    return text, blocks


def run_failed(pipeline: str, run_id: str, step: str | None, reason: str | None) -> tuple[str, list[dict[str, Any]]]:
    where = f"step *{step}*" if step else "the run"
    text = f"Run {run_id} of {pipeline} failed at {step or 'an unknown step'}: {reason or 'no reason given'}"
    return text, [_section(f":x: Run `{run_id}` of *{pipeline}* failed in {where}\n>{reason or 'no reason given'}")]


def decided(group: str, result: DecisionResult, user_id: str) -> tuple[str, list[dict[str, Any]]]:
    verb = {"Approved": ":white_check_mark: approved", "Rejected": ":no_entry: rejected"}.get(
        result.approval_status, result.approval_status
    )
    note = "" if result.changed else " (it already was)"
    text = f"{group} v{result.version} {verb} by <@{user_id}>{note}"
    return text, [_section(text)]


def decision_failed(
    group: str, version: int, decision: str, user_id: str, reason: str
) -> tuple[str, list[dict[str, Any]]]:
    text = f"<@{user_id}> clicked {decision} on {group} v{version}, but the decision was not made: {reason}"
    return text, [_section(f":warning: {text}")]


def config_invalid(parameter: str, version: int | None, problems: list[str]) -> tuple[str, list[dict[str, Any]]]:
    listed = "\n".join(f"• `{p}`" for p in problems[:20])
    text = f"Pipeline config {parameter} (version {version}) is invalid; the pipeline was left as it was"
    return text, [_section(f":warning: {text}:\n{listed}")]

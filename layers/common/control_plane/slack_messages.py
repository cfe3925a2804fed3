"""The Slack messages besides the approval request (control_plane.approval_request): a failed run, a decision that
could not be made, a decision made outside the control plane, an invalid config, an alarm's new state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control_plane.service_text import clip

# what an outside caller wrote is shown, never read as markup: Slack's three escapes
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
SHOWN_DESCRIPTION = 300


def shown(text: str) -> str:
    """Text from outside (a caller's ARN, a comment) as Slack shows it: never read as markup or a mention."""
    return text.translate(_ESCAPES)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def run_failed(pipeline: str, run_id: str, *, step: str | None, reason: str | None) -> tuple[str, list[dict[str, Any]]]:
    where = f"step *{step}*" if step else "the run"
    text = f"Run {run_id} of {pipeline} failed at {step or 'an unknown step'}: {reason or 'no reason given'}"
    return text, [section(f":x: Run `{run_id}` of *{pipeline}* failed in {where}\n>{reason or 'no reason given'}")]


def decision_failed(
    group: str, version: int, *, decision: str, user_id: str, reason: str
) -> tuple[str, list[dict[str, Any]]]:
    text = f"<@{user_id}> clicked {decision} on {group} v{version}, but the decision was not made: {reason}"
    return text, [section(f":warning: {text}")]


def decided_outside(
    *, group: str, version: int, status: str, actor: str, at: datetime, description: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """An approval or rejection made in SageMaker directly: what, by whom, when, and that it was not deployed."""
    when = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    text = f"{group} v{version} was {status} outside the control plane, in SageMaker directly, by {actor} at {when}"
    if status == "Approved":
        text += f"; it was not deployed automatically (POST /models/{version}/deploy deploys it)"
    lines = [f":warning: {text.translate(_ESCAPES)}"]
    if description:
        lines.append(f">ApprovalDescription: {clip(description, SHOWN_DESCRIPTION).translate(_ESCAPES)}")
    lines.append(f"Decisions belong here in Slack or in POST /models/{version}/approve and /reject.")
    return text.translate(_ESCAPES), [section("\n".join(lines))]


def config_invalid(parameter: str, version: int | None, problems: list[str]) -> tuple[str, list[dict[str, Any]]]:
    listed = "\n".join(f"• `{p}`" for p in problems[:20])
    text = f"Pipeline config {parameter} (version {version}) is invalid; the pipeline was left as it was"
    return text, [section(f":warning: {text}:\n{listed}")]


ALARM_ICONS = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:", "INSUFFICIENT_DATA": ":grey_question:"}


def alarm_changed(
    *, name: str, state: str, previous: str, reason: str, description: str | None, url: str
) -> tuple[str, list[dict[str, Any]]]:
    """A CloudWatch alarm's new state: its name, the state it left, CloudWatch's reason and a link to the alarm."""
    text = f"Alarm {name} is {state} (was {previous}): {reason}"
    lines = [f"{ALARM_ICONS.get(state, '')} Alarm *{shown(name)}* is *{state}* (was {previous})"]
    if description:
        lines.append(shown(clip(description, SHOWN_DESCRIPTION)))
    lines += [f">{shown(clip(reason, SHOWN_DESCRIPTION))}", f"<{url}|Open the alarm in CloudWatch>"]
    return shown(text), [section("\n".join(lines))]

"""Approve or reject from a Slack button, in two halves so that Slack's 3 s window holds whatever happens
downstream. The click handler checks the signature, the window and the allow-list, queues the click and
answers; the decision worker decides once per click (the same decision as the API) and updates the message.
Anything missing (secret, allow-list, signature) means no."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.signature import Clock, SignatureVerifier

from control_plane.errors import Forbidden, InvalidRequest, Unauthorized
from control_plane.models import Decision, DecisionResult
from control_plane.ports import AuditPort, RegistryPort
from control_plane.registry import DecideCommand, decide

# Slack's own replay window is five minutes; a click's record outlives it, so a replay inside it is caught
CLICK_SECONDS = 15 * 60
# The worker's key: one decision per click (Slack's retries and SQS's repeats carry the same two values)
CLICK_KEY = "[trigger_id, action_ts]"


class SlackAction(BaseModel):
    """The one button click of a block_actions payload, with what the reply needs."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    user_name: str
    decision: Decision
    group: str
    version: int
    action_ts: str
    trigger_id: str
    response_url: str
    # where the message with the buttons is, for a reply in its thread when the decision fails
    channel_id: str | None = None
    message_ts: str | None = None
    # the request's blocks as Slack sent them back: its update keeps the evidence and replaces the buttons
    message_blocks: list[dict[str, Any]] | None = None


def verify(body: str, timestamp: str | None, signature: str | None, *, signing_secret: str, clock: Clock) -> None:
    """Slack's v0 signature over the raw body, within five minutes of Slack's timestamp."""
    try:
        valid = SignatureVerifier(signing_secret, clock=clock).is_valid(body, timestamp, signature)
    except ValueError:  # a timestamp that is not a number
        valid = False
    if not valid:
        raise Unauthorized("the Slack signature is missing, wrong or older than five minutes")


def parse(body: str) -> SlackAction:
    try:
        payload: dict[str, Any] = json.loads(parse_qs(body, strict_parsing=True)["payload"][0])
        action = payload["actions"][0]
        target = json.loads(action["value"])
        return SlackAction(
            user_id=payload["user"]["id"],
            user_name=payload["user"].get("username") or payload["user"].get("name", ""),
            decision=action["action_id"],
            group=target["group"],
            version=target["version"],
            action_ts=action["action_ts"],
            trigger_id=payload["trigger_id"],
            response_url=payload["response_url"],
            channel_id=(payload.get("channel") or {}).get("id"),
            message_ts=(payload.get("container") or {}).get("message_ts"),
            message_blocks=(payload.get("message") or {}).get("blocks"),
        )
    except (KeyError, IndexError, TypeError, ValueError, ValidationError) as error:
        raise InvalidRequest(f"not a Slack block action this app sent: {type(error).__name__}") from error


def authorise(action: SlackAction, approvers: list[str], *, group: str, response_url_prefix: str) -> None:
    if not approvers:
        raise Forbidden("no Slack approvers are configured (slack.approvers is empty)")
    if action.user_id not in approvers:
        raise Forbidden(f"Slack user {action.user_id} may not approve or reject models")
    if action.group != group:
        raise InvalidRequest(f"the button is for model package group {action.group}, not {group}")
    if not action.response_url.startswith(response_url_prefix):
        raise InvalidRequest("the response_url is not Slack's")


def act(action: SlackAction, registry: RegistryPort, audit: AuditPort) -> DecisionResult:
    """The click's decision; the worker runs it once per click (CLICK_KEY)."""
    command = DecideCommand(
        version=action.version,
        decision=action.decision,
        actor=f"slack:{action.user_id} ({action.user_name})",
        comment=f"{action.decision} clicked in Slack",
        source="slack",
    )
    return decide(command, registry, audit)

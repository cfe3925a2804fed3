"""Slack's Web API (posting messages) and response URLs (updating the message a button was on)."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

# Slack wants an interaction answered within 3 s: a slow Slack must not hold the answer
_TIMEOUT = 2


class SlackPoster:
    def __init__(self, bot_token: str, base_url: str | None = None) -> None:
        self._client = WebClient(token=bot_token, timeout=_TIMEOUT, base_url=base_url or WebClient.BASE_URL)

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None) -> str:
        response = self._client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
        return str(response["ts"])


def respond(response_url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> int:
    """Replace the message an action came from; returns Slack's status code."""
    payload: dict[str, Any] = {"replace_original": True, "text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    return int(WebhookClient(response_url, timeout=_TIMEOUT).send_dict(payload).status_code)

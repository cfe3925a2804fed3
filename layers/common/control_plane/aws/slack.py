"""Slack's Web API (posting messages) and response URLs (updating the message a button was on)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from control_plane.aws.secrets import slack_secret
from control_plane.errors import ControlPlaneError, UploadFailed
from control_plane.settings import SlackSettings

# Slack wants an interaction answered within 3 s: a slow Slack must not hold the answer
_TIMEOUT = 2
# what getting a poster and posting can raise: no secret (Forbidden), Slack's refusal, the network
POST_ERRORS = (ControlPlaneError, OSError, SlackClientError)


class SlackPoster:
    def __init__(self, bot_token: str, base_url: str | None = None, timeout: int = _TIMEOUT) -> None:
        self._client = WebClient(token=bot_token, timeout=timeout, base_url=base_url or WebClient.BASE_URL)

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]], *, thread_ts: str | None = None) -> str:
        response = self._client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts)
        return str(response["ts"])

    def upload(self, filename: str, content: bytes, title: str) -> str:
        """files.getUploadURLExternal, the upload, files.completeUploadExternal (slack_sdk's files_upload_v2),
        shared with no channel: the message that shows it is posted next. Needs the files:write scope."""
        try:
            response = self._client.files_upload_v2(filename=filename, file=content, title=title, alt_txt=title)
        except SlackApiError as error:  # Slack's answer names why: missing_scope, file_too_large, ...
            raise UploadFailed(str(error.response.get("error") or "refused")) from error
        except (SlackClientError, OSError) as error:
            raise UploadFailed(type(error).__name__) from error
        return str(response["file"]["id"])


def slack_poster(settings: SlackSettings, *, timeout: int = _TIMEOUT) -> SlackPoster:
    """The stack's Slack app, as a function's settings name it. The secret is read at every call (Powertools caches
    it for five minutes), so a removed secret means no post (fail closed) and a new token is taken up; the client is
    kept per token."""
    return _poster(slack_secret(settings.slack_secret).bot_token, settings.slack_api_url, timeout)


@lru_cache(maxsize=4)
def _poster(bot_token: str, base_url: str | None, timeout: int) -> SlackPoster:
    return SlackPoster(bot_token, base_url, timeout)


def respond(response_url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> int:
    """Replace the message an action came from; returns Slack's status code."""
    payload: dict[str, Any] = {"replace_original": True, "text": text}
    if blocks is not None:
        payload["blocks"] = blocks
    return int(WebhookClient(response_url, timeout=_TIMEOUT).send_dict(payload).status_code)

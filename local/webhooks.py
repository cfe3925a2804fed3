"""A recorder of outgoing HTTP calls on loopback: Slack's Web API (chat.postMessage), the response URLs of
Slack button clicks, and CloudFormation's custom-resource ResponseURL.

It records what it receives, so tests and the local stack can show what would have been sent. Point the
functions at it with SLACK_API_URL (Web API), SLACK_RESPONSE_URL_PREFIX (response URLs) or a ResponseURL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from local.loopback import Loopback


@dataclass
class Received:
    method: str
    path: str
    body: dict[str, Any]
    authorization: str | None
    ts: str | None = None  # the timestamp the stand-in Web API gave a posted message

    @property
    def message(self) -> dict[str, Any]:
        """A posted message as Slack keeps it: what was sent, with its timestamp."""
        return {**self.body, "ts": self.ts}


class WebhookRecorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.loopback = Loopback(self._record, name="webhooks")

    @property
    def url(self) -> str:
        return f"{self.loopback.url}/"

    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    @property
    def response_url(self) -> str:
        return f"{self.url}actions/T0001/1/response"

    def posts(self, path_prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(path_prefix)]

    def stop(self) -> None:
        self.loopback.stop()

    def _record(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        text = raw.decode()
        body = (
            json.loads(text or "{}") if text.lstrip().startswith("{") else {k: v[0] for k, v in parse_qs(text).items()}
        )
        received = Received(method, path, body, headers.get("Authorization"))
        self.received.append(received)
        if path.startswith("/api/"):  # Slack's Web API answers JSON with the message's timestamp
            received.ts = f"1795000000.{len(self.received):06d}"
            answer = {"ok": True, "ts": received.ts, "channel": body.get("channel")}
            return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        return 200, {"Content-Type": "text/plain"}, b"ok"


def start_recorder() -> WebhookRecorder:
    recorder = WebhookRecorder()
    recorder.loopback.start()
    return recorder

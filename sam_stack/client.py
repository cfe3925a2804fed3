"""Calling the stack as a user would: IAM-signed (SigV4) requests to the REST API, and a Slack button click
signed with the Slack app's signing secret."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True, kw_only=True)
class Api:
    """The REST API of a stack, local or deployed: every request signed with SigV4 for execute-api."""

    url: str
    access_key: str
    secret_key: str
    region: str
    session_token: str | None = None

    def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        request = AWSRequest(
            method=method,
            url=f"{self.url}{path}",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        credentials = Credentials(self.access_key, self.secret_key, self.session_token)
        SigV4Auth(credentials, "execute-api", self.region).add_auth(request)
        return send(method, str(request.url), headers=dict(request.headers.items()), data=data)


def send(method: str, url: str, *, headers: dict[str, str], data: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data or None, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our API, https or loopback)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def signed_click(
    message: dict[str, Any], *, action: str, user: str, signing_secret: str, response_url: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a press of the `action` button (approve or reject) of a posted message, signed as
    Slack signs an interaction."""
    buttons = [b for block in message.get("blocks", []) for b in block.get("elements", []) if b.get("type") == "button"]
    button = next(b for b in buttons if b["action_id"] == action)
    now = time.time()
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "team": {"id": "TLOCAL"},
        "channel": {"id": message.get("channel")},
        "container": {"type": "message", "channel_id": message.get("channel"), "message_ts": message.get("ts")},
        # the message the button is on, as Slack sends it back
        "message": {
            "type": "message",
            "ts": message.get("ts"),
            "text": message.get("text"),
            "blocks": message.get("blocks", []),
        },
        "trigger_id": f"{now:.6f}.local",
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action, "value": button["value"], "action_ts": f"{now:.6f}"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(now))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": str(signature),
    }
    return body.encode(), headers


def click(
    api_url: str, message: dict[str, Any], *, action: str, user: str, signing_secret: str, response_url: str
) -> tuple[int, Any]:
    """Press the `action` button (approve or reject) of a posted message, as Slack would send it."""
    body, headers = signed_click(
        message, action=action, user=user, signing_secret=signing_secret, response_url=response_url
    )
    return send("POST", f"{api_url}/slack/actions", headers=headers, data=body)

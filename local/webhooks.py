"""A recorder of outgoing HTTP calls on loopback: Slack's Web API (chat.postMessage and the file upload of
files.getUploadURLExternal, the upload itself and files.completeUploadExternal), the response URLs of Slack
button clicks, and CloudFormation's custom-resource ResponseURL.

It records what it receives, so tests and the local stack can show what would have been sent, and serves the
uploaded files back (with the bot token, as Slack serves url_private). Point the functions at it with
SLACK_API_URL (Web API), SLACK_RESPONSE_URL_PREFIX (response URLs) or a ResponseURL. Like Slack, it refuses an
upload whose length is not the one announced, a completion of a file never uploaded, and a message whose image
block names a file it does not have.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
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


@dataclass
class UploadedFile:
    """A file uploaded through the stand-in's Web API: what was announced, what arrived, whether it was completed."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    completed: bool = False
    shared_to: list[str] = field(default_factory=list)


class WebhookRecorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.files: dict[str, UploadedFile] = {}
        self._ids = itertools.count(1)
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

    def file_url(self, file: UploadedFile) -> str:
        return f"{self.url}files/{file.id}/{file.filename}"

    def _record(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/upload/"):  # the upload URL: the file's bytes, not a form
            return self._upload(path.removeprefix("/upload/"), body)
        if path.startswith("/files/") and method == "GET":
            return self._serve(path, headers.get("Authorization"))
        text = body.decode()
        fields = (
            json.loads(text or "{}") if text.lstrip().startswith("{") else {k: v[0] for k, v in parse_qs(text).items()}
        )
        received = Received(method, path, fields, headers.get("Authorization"))
        self.received.append(received)
        if path.startswith("/api/"):  # Slack's Web API answers JSON
            answer = self._web_api(path.removeprefix("/api/"), fields, received)
            return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
        return 200, {"Content-Type": "text/plain"}, b"ok"

    def _web_api(self, method: str, body: dict[str, Any], received: Received) -> dict[str, Any]:
        if method == "files.getUploadURLExternal":
            try:
                length = int(body["length"])
                filename = str(body["filename"])
            except (KeyError, ValueError):
                return {"ok": False, "error": "invalid_arguments"}
            file = UploadedFile(id=f"F{next(self._ids):010d}", filename=filename, length=length)
            self.files[file.id] = file
            return {"ok": True, "upload_url": f"{self.url}upload/{file.id}", "file_id": file.id}
        if method == "files.completeUploadExternal":
            listed = [self.files.get(str(item.get("id"))) for item in json.loads(body.get("files", "[]"))]
            uploaded = [file for file in listed if file is not None and file.content is not None]
            if not listed or len(uploaded) != len(listed):
                return {"ok": False, "error": "file_not_found"}
            for file in uploaded:
                file.completed = True
                if body.get("channel_id"):
                    file.shared_to.append(str(body["channel_id"]))
            return {"ok": True, "files": [self._file_object(file) for file in uploaded]}
        if method == "chat.postMessage":
            blocks = body.get("blocks") or []
            for block in json.loads(blocks) if isinstance(blocks, str) else blocks:
                named = (block.get("slack_file") or {}).get("id") if block.get("type") == "image" else None
                if named is not None and not (named in self.files and self.files[named].completed):
                    return {"ok": False, "error": "invalid_blocks"}
        # chat.postMessage and the rest: the message's timestamp
        received.ts = f"1795000000.{len(self.received):06d}"
        return {"ok": True, "ts": received.ts, "channel": body.get("channel")}

    def _file_object(self, file: UploadedFile) -> dict[str, Any]:
        return {"id": file.id, "name": file.filename, "url_private": self.file_url(file), "size": file.length}

    def _upload(self, file_id: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        file = self.files.get(file_id)
        if file is None:
            return 404, {"Content-Type": "text/plain"}, b"no such upload"
        if len(raw) != file.length:  # Slack refuses bytes that are not the announced length
            return 400, {"Content-Type": "text/plain"}, f"expected {file.length} bytes, got {len(raw)}".encode()
        file.content = raw
        return 200, {"Content-Type": "text/plain"}, f"OK - {len(raw)}".encode()

    def _serve(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        file = self.files.get(path.split("/")[2])
        if not authorization or not authorization.startswith("Bearer "):
            return 403, {"Content-Type": "text/plain"}, b"url_private needs the token"
        if file is None or not file.completed or file.content is None:
            return 404, {"Content-Type": "text/plain"}, b"no such file"
        return 200, {"Content-Type": "image/png"}, file.content


def start_recorder() -> WebhookRecorder:
    recorder = WebhookRecorder()
    recorder.loopback.start()
    return recorder

"""A recorder of outgoing HTTP calls on loopback: Slack's Web API (chat.postMessage), the response URLs of
Slack button clicks, and CloudFormation's custom-resource ResponseURL.

It records what it receives, so tests and the local stack can show what would have been sent. Point the
functions at it with SLACK_API_URL (Web API), SLACK_RESPONSE_URL_PREFIX (response URLs) or a ResponseURL.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    path: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class WebhookRecorder:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    @property
    def response_url(self) -> str:
        return f"{self.url}actions/T0001/1/response"

    def posts(self, path_prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(path_prefix)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_recorder() -> WebhookRecorder:
    fake: WebhookRecorder

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if raw.lstrip().startswith("{"):
                body = json.loads(raw or "{}")
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
            fake.received.append(Received(self.command, self.path, body, self.headers.get("Authorization")))
            answer = {"ok": True, "ts": f"1795000000.{len(fake.received):06d}", "channel": body.get("channel")}
            data = json.dumps(answer).encode() if self.path.startswith("/api/") else b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if self.path.startswith("/api/") else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    fake = WebhookRecorder(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake

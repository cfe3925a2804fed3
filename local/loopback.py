"""One small HTTP server on 127.0.0.1 for every part of the local stack that answers HTTP (the API, the
SageMaker and SSM fronts, the Slack stand-in): `respond(method, path, headers=..., body=...)` gives status, headers
and body; the server runs in a background thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self


class Respond(Protocol):
    def __call__(
        self, method: str, path: str, /, *, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]: ...


class Loopback:
    def __init__(self, respond: Respond, port: int = 0, name: str = "loopback") -> None:
        self.name = name

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, data = respond(self.command, self.path, headers=dict(self.headers), body=body)
                self.send_response(status)
                for header, value in headers.items():
                    if header.lower() not in {"content-length", "connection"}:
                        self.send_header(header, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Loopback:
        threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Served:
    """A part of the local stack that answers on its own Loopback (`self.loopback`): its URL, start and stop."""

    loopback: Loopback

    @property
    def endpoint(self) -> str:
        return self.loopback.url

    def start(self) -> Self:
        self.loopback.start()
        return self

    def stop(self) -> None:
        self.loopback.stop()

"""SageMaker hosting and batch transform: `serve` (container/bin/serve), the bring-your-own-container contract.

    serve        # what SageMaker runs: docker run IMAGE serve

gunicorn on 0.0.0.0:8080 (`SAGEMAKER_BIND_TO_PORT`), sync workers, one per core (`SAGEMAKER_MODEL_SERVER_WORKERS`),
the cores' OpenMP threads divided among them; each worker loads the model from /opt/ml/model (what SageMaker
extracts from model.tar.gz) once, before it accepts a connection. SIGTERM stops it gracefully.

- `GET /ping`: 200 once the worker's model is loaded.
- `POST /invocations` with `image/jpeg`, `image/png` or `application/x-image`: JSON detections in the image's own
  pixels (detector.inference); `X-Amzn-SageMaker-Custom-Attributes: score_threshold=0.3` sets the threshold.
- `GET /execution-parameters`: batch transform's strategy, payload size and concurrency.
Bad input is a 4xx that says why (415 content type, 413 too large, 400 not a whole image or a bad attribute);
nothing a caller sends takes a worker down.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from detector import jobs, paths

log = logging.getLogger("detector.serve")

PORT_ENV, WORKERS_ENV, TIMEOUT_ENV = (
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_MODEL_SERVER_WORKERS",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT",
)
CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")
# SageMaker's real-time payload limit is 6 MB, and batch transform's MaxPayloadInMB is offered as the same
MAX_PAYLOAD_MB = 6
MAX_BYTES = MAX_PAYLOAD_MB * 1024 * 1024
DRAIN_BYTES = 4 * MAX_BYTES
ATTRIBUTES_HEADER = "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def workers() -> int:
    return max(1, int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1))


def custom_threshold(attributes: str | None) -> float | None:
    """`score_threshold=0.3` among SageMaker's custom attributes (`k=v` pairs separated by `;` or `,`)."""
    from detector.inference import BadInput, threshold_of

    for pair in (attributes or "").replace(",", ";").split(";"):
        key, _, value = pair.strip().partition("=")
        if key.strip() == "score_threshold":
            try:
                return threshold_of(value.strip(), "X-Amzn-SageMaker-Custom-Attributes score_threshold")
            except BadInput as error:
                raise Refused(400, str(error)) from None
    return None


def read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        raise Refused(400, "Content-Length is not a number") from None
    stream = environ["wsgi.input"]
    if length > MAX_BYTES:
        # read what was sent (up to a bound) so that the client hears the answer instead of a reset connection
        left = min(length, DRAIN_BYTES)
        while left > 0 and (chunk := stream.read(min(left, 1 << 16))):
            left -= len(chunk)
        raise Refused(413, f"the body is {length} bytes; at most {MAX_PAYLOAD_MB} MB is taken")
    data: bytes = stream.read(length) if length >= 0 else stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Refused(413, f"the body is over {MAX_PAYLOAD_MB} MB")
    if 0 <= length != len(data):
        raise Refused(400, f"the body ended after {len(data)} of its {length} bytes")
    if not data:
        raise Refused(400, "the body is empty: send the image")
    return data


class Application:
    """The WSGI application of one worker, around its loaded model."""

    def __init__(self, model_folder: Path) -> None:
        from detector.inference import Predictor

        self.predictor = Predictor(model_folder)
        jobs.event(log, "model loaded", folder=model_folder, pid=os.getpid())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, body = self.route(environ)
        except Refused as refused:
            status, body = refused.status, {"error": refused.message}
        except Exception:  # a bug, not the caller's: answered, logged, and the worker goes on
            log.exception("invocation failed")
            status, body = 500, {"error": "the model server failed on this request"}
        data = json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def route(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        from detector.inference import BadInput

        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        allowed = {"/ping": "GET", "/execution-parameters": "GET", "/invocations": "POST"}
        if path not in allowed:
            raise Refused(404, f"no route {path}")
        if method != allowed[path] and not (path == "/ping" and method == "HEAD"):
            raise Refused(405, f"{path} takes {allowed[path]}")
        if path == "/ping":
            return 200, {"status": "healthy"}
        if path == "/execution-parameters":
            return 200, {
                "MaxConcurrentTransforms": workers(),
                "BatchStrategy": "SINGLE_RECORD",
                "MaxPayloadInMB": MAX_PAYLOAD_MB,
            }
        content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise Refused(415, f"Content-Type {content_type or '(none)'} is not one of {', '.join(CONTENT_TYPES)}")
        threshold = custom_threshold(environ.get(ATTRIBUTES_HEADER))
        data = read_body(environ)
        try:
            return 200, self.predictor.answer(data, threshold)
        except BadInput as error:
            raise Refused(400, str(error)) from None


def options() -> dict[str, Any]:
    """gunicorn's settings from SageMaker's variables."""
    return {
        "bind": f"0.0.0.0:{os.environ.get(PORT_ENV) or 8080}",
        "workers": workers(),
        "worker_class": "sync",
        "timeout": int(os.environ.get(TIMEOUT_ENV) or 60),
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,  # each worker imports MXNet and loads the model after the fork
    }


def main(argv: list[str] | None = None) -> None:
    jobs.no_arguments("python3 -m detector.serve", __doc__, argv)
    from gunicorn.app.base import BaseApplication

    jobs.setup_logging()
    # the cores' OpenMP threads divided among the workers, set before any worker imports MXNet
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers())))
    folder = paths.model_dir()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options().items():
                self.cfg.set(key, value)

        def load(self) -> Application:
            return Application(folder)

    Server().run()


if __name__ == "__main__":
    main()

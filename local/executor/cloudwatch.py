"""A training job's output in the emulated CloudWatch Logs, as SageMaker writes it: log group
`/aws/sagemaker/TrainingJobs` (created if missing), one stream per host, `<job name>/<host>-<start epoch seconds>`.
Lines are batched and put about every second by a background thread, so the job never waits for them."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FLUSH_SECONDS = 1.0


class LogStream:
    """One host's stream: `add` a line (cheap), `close` puts what is left and stops the flushing thread."""

    def __init__(self, logs: Any, stream: str, group: str = TRAINING_LOG_GROUP) -> None:
        self.logs, self.group, self.stream = logs, group, stream
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._thread = threading.Thread(target=self._flush_every, daemon=True)
        self._thread.start()

    def add(self, line: str) -> None:
        with self._lock:
            self._pending.append({"timestamp": int(time.time() * 1000), "message": line.rstrip("\n") or " "})

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=10)
        self._flush()

    def _flush_every(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            # the job's log file keeps every line: a put the emulator refuses loses only the copy here
            with contextlib.suppress(ClientError, BotoCoreError):
                self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)

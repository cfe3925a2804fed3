"""A queue the functions hand work to (the Slack clicks the decision worker takes)."""

from __future__ import annotations

from typing import Any

from control_plane.aws.clients import LazyClient


class Queue:
    _sqs = LazyClient("sqs")

    def __init__(self, url: str, sqs: Any = None) -> None:
        self.url = url
        self._client = sqs

    def send(self, body: str) -> str:
        return str(self._sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"])

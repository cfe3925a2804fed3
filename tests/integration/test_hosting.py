"""The local hosting's InvokeEndpoint against a stand-in container: what SageMaker's front makes of its answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from local.hosting import Endpoint, Hosting, Server
from local.loopback import Loopback


@pytest.mark.parametrize(("status", "side"), [(400, "client"), (503, "server")])
def test_a_containers_error_is_passed_on_as_a_model_error_naming_its_status(
    tmp_path: Path, status: int, side: str
) -> None:
    container = Loopback(lambda *_, **__: (status, {"Content-Type": "application/json"}, b'{"error": "no"}')).start()
    placeholder = subprocess.Popen(["sleep", "30"])  # the Server's process; the stand-in answers for it
    try:
        hosting = Hosting(None, None, tmp_path, environment={}, region="us-east-1", account="123456789012")
        port = int(container.url.rsplit(":", 1)[1])
        endpoint = Endpoint("e", hosting.arn("endpoint", "e"), "c", status="InService")
        endpoint.server = Server("c", tmp_path, port, placeholder)
        hosting.endpoints["e"] = endpoint

        code, headers, body = hosting.invoke("e", b"x", {"Content-Type": "image/jpeg"})

        assert (code, headers["x-amzn-ErrorType"]) == (424, "ModelError")
        answer = json.loads(body)
        assert answer["message"] == f'Received {side} error ({status}) from primary with message "{{"error": "no"}}".'
        assert answer["OriginalStatusCode"] == status
        assert hosting.invoke("missing", b"x", {})[0] == 400
    finally:
        placeholder.kill()
        container.stop()

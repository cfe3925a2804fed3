"""The local hosting's InvokeEndpoint against a stand-in container: what SageMaker's front makes of its answers."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local import hosting as hosting_module
from local.executor.records import ServiceError
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


def failed_endpoint(tmp_path: Path) -> Hosting:
    """Hosting with endpoint `e` Failed on config `c` (its model `m`)."""
    hosting = Hosting(None, None, tmp_path, environment={}, region="us-east-1", account="123456789012")
    hosting.models["m"] = {"ModelName": "m", "Containers": [{}]}
    hosting.configs["c"] = {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
    }
    hosting.endpoints["e"] = Endpoint("e", hosting.arn("endpoint", "e"), "c", status="Failed", failure_reason="no ping")
    return hosting


def test_a_failed_endpoint_takes_only_delete_and_its_name_is_taken_until_the_deletion_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hosting_module, "DELETE_SECONDS", 0.5)
    hosting = failed_endpoint(tmp_path)

    # A Failed endpoint cannot be updated (DescribeEndpoint's EndpointStatus: DeleteEndpoint is all it takes)
    with pytest.raises(ServiceError, match="DeleteEndpoint is the only operation") as refused:
        hosting.update_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    assert refused.value.code == "ValidationException"

    # Deleted, it is Deleting for a while: its name is not free, and its config may go meanwhile
    hosting.delete_endpoint({"EndpointName": "e"})
    with pytest.raises(ServiceError, match="Cannot create already existing endpoint"):
        hosting.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    hosting.operations["DeleteEndpointConfig"]({"EndpointConfigName": "c"})
    described = hosting.operations["DescribeEndpoint"]({"EndpointName": "e"})
    assert (described["EndpointStatus"], described["ProductionVariants"]) == ("Deleting", [])
    with pytest.raises(ServiceError, match="Cannot delete in-progress endpoint"):
        hosting.delete_endpoint({"EndpointName": "e"})

    # and then it is gone
    time.sleep(1.0)
    with pytest.raises(ServiceError, match="Could not find endpoint"):
        hosting.operations["DescribeEndpoint"]({"EndpointName": "e"})


def test_an_endpoint_deleted_while_it_starts_stays_deleting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hosting = failed_endpoint(tmp_path)
    endpoint = hosting.endpoints["e"]
    endpoint.status = "Deleting"

    def never_healthy(*_: object) -> Server:
        raise RuntimeError("the container did not pass the /ping health check")

    monkeypatch.setattr(hosting, "_start", never_healthy)
    hosting._bring_up(endpoint, "c")

    assert (endpoint.status, endpoint.failure_reason) == ("Deleting", "no ping")


def test_list_calls_keep_what_their_name_and_creation_time_filters_say(tmp_path: Path) -> None:
    hosting = failed_endpoint(tmp_path)
    hosting.models["m"]["CreationTime"] = datetime.now(UTC) - timedelta(hours=1)
    hosting.models["other"] = {"ModelName": "other", "CreationTime": datetime.now(UTC) - timedelta(hours=1)}
    hosting.models["m-new"] = {"ModelName": "m-new", "CreationTime": datetime.now(UTC)}
    for model in hosting.models.values():
        model["ModelArn"] = hosting.arn("model", model["ModelName"])

    before = (datetime.now(UTC) - timedelta(minutes=10)).timestamp()  # as botocore sends a timestamp
    listed = hosting.operations["ListModels"]({"NameContains": "m", "CreationTimeBefore": before})

    assert [m["ModelName"] for m in listed["Models"]] == ["m"]

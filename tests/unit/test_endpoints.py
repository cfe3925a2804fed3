"""Deploying to the stack's endpoint when SageMaker says no: a Failed endpoint replaced, a refused request leaving
nothing behind, and SageMaker's refusals as the statuses a caller can act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from control_plane import endpoints
from control_plane.aws.errors import refused_by_sagemaker
from control_plane.errors import Conflict, ControlPlaneError, InvalidRequest, NotFound, TooManyRequests
from pipeline_def.config import DeploymentSettings
from tests.unit.fakes import ARN, FakeAudit, FakeHosting, FakeRegistry

SETTINGS = DeploymentSettings(instance_type="ml.m5.large", instance_count=1, on_approval=False)
FAILED_CONFIG = "scratch-detector-v1-0a1b2c3d"
QUOTA = (
    "The account-level service limit 'ml.m5.large for endpoint usage' is 0 Instances, with current utilization of "
    "0 Instances and a request delta of 1 Instances. "
    "Please use AWS Service Quotas to request an increase for this quota."
)


def deploy(version: int, hosting: FakeHosting, registry: FakeRegistry, audit: FakeAudit) -> object:
    command = endpoints.DeployCommand(version=version, actor="arn:aws:iam::123456789012:user/alice", source="api")
    return endpoints.deploy(command, SETTINGS, registry=registry, hosting=hosting, audit=audit)


def failed_endpoint() -> FakeHosting:
    """An endpoint whose creation failed: SageMaker keeps its config named, and takes only DeleteEndpoint."""
    hosting = FakeHosting()
    hosting.models[FAILED_CONFIG] = f"{ARN}:model-package/scratch-detector/1"
    hosting.configs[FAILED_CONFIG] = {"ProductionVariants": [{"ModelName": FAILED_CONFIG}]}
    hosting.described = {
        "EndpointName": hosting.endpoint,
        "EndpointConfigName": FAILED_CONFIG,
        "EndpointStatus": "Failed",
        "FailureReason": "The primary container for production variant AllTraffic did not pass the ping health check.",
    }
    hosting.refuse["UpdateEndpoint"] = Conflict("SageMaker refused UpdateEndpoint: the endpoint is Failed")
    return hosting


def approved(*versions: int) -> FakeRegistry:
    registry = FakeRegistry()
    for version in versions:
        registry.add(version, status="Approved")
    return registry


def test_a_failed_endpoint_is_deleted_with_what_it_failed_on_and_created_again() -> None:
    # Given an endpoint whose creation of version 1 failed
    hosting, registry, audit = failed_endpoint(), approved(1, 2), FakeAudit()

    # When version 2 is deployed
    deploy(2, hosting, registry, audit)

    # Then the endpoint was deleted and created again on version 2's config, never updated
    assert "UpdateEndpoint" not in hosting.calls
    assert hosting.calls.index("DeleteEndpoint") < hosting.calls.index("CreateEndpoint")
    assert (hosting.described or {}).get("EndpointStatus") == "Creating"
    # and the failed config and its model are gone: only version 2's remain
    [config] = hosting.configs
    assert endpoints.served_version(config) == 2
    assert list(hosting.models) == [config]
    # and the audit says the failed endpoint was deleted, then the endpoint created again
    deleted, deployed = audit.entries
    assert (deleted.action, deleted.details["endpoint_config"]) == ("delete", FAILED_CONFIG)
    assert "ping health check" in deleted.details["failure_reason"]
    assert (deployed.action, deployed.details["how"], deployed.details["version"]) == ("deploy", "recreate", "2")


def test_a_failed_endpoint_still_being_deleted_is_a_409_and_the_next_deploy_creates_it() -> None:
    # Given a failed endpoint whose deletion takes longer than a request may wait
    hosting, registry, audit = failed_endpoint(), approved(1), FakeAudit()
    hosting.deletion_lags = True

    # When version 1 is deployed again, Then the caller is told to deploy again, and nothing new was made
    with pytest.raises(Conflict, match="had failed and is being deleted: deploy version 1 again"):
        deploy(1, hosting, registry, audit)
    assert (hosting.models, hosting.configs) == ({}, {})
    assert "CreateModel" not in hosting.calls
    # and while it is Deleting, a deploy is a 409 too
    with pytest.raises(Conflict, match="is Deleting"):
        deploy(1, hosting, registry, audit)

    # When the deletion is done, Then the next deploy creates it
    hosting.described = None
    deploy(1, hosting, registry, audit)
    assert audit.entries[-1].details["how"] == "create"


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_the_approval_gate_holds_before_a_failed_endpoint_is_touched(status: str) -> None:
    hosting, registry = failed_endpoint(), FakeRegistry()
    registry.add(2, status=status)

    with pytest.raises(Conflict, match=f"model version 2 is {status}"):
        deploy(2, hosting, registry, FakeAudit())

    assert hosting.calls == []


@pytest.mark.parametrize(
    ("operation", "refusal", "endpoint_status"),
    [
        ("CreateEndpointConfig", InvalidRequest("SageMaker refused CreateEndpointConfig (ValidationException)"), None),
        ("CreateEndpoint", TooManyRequests(f"SageMaker refused CreateEndpoint (ResourceLimitExceeded): {QUOTA}"), None),
        ("UpdateEndpoint", TooManyRequests("SageMaker refused UpdateEndpoint (ThrottlingException)"), "InService"),
    ],
)
def test_a_deploy_sagemaker_refuses_leaves_nothing_behind_and_is_not_audited(
    operation: str, refusal: ControlPlaneError, endpoint_status: str | None
) -> None:
    # Given an endpoint (none, or one in service on version 1), and SageMaker refusing one step of the deploy
    hosting, registry, audit = FakeHosting(), approved(1, 2), FakeAudit()
    if endpoint_status:
        hosting.configs[FAILED_CONFIG] = {"ProductionVariants": [{"ModelName": FAILED_CONFIG}]}
        hosting.models[FAILED_CONFIG] = "package"
        described = {"EndpointName": hosting.endpoint, "EndpointConfigName": FAILED_CONFIG}
        hosting.described = {**described, "EndpointStatus": endpoint_status}
    before = (dict(hosting.models), dict(hosting.configs))
    hosting.refuse[operation] = refusal

    # When version 2 is deployed, Then the caller gets SageMaker's refusal as it is
    with pytest.raises(type(refusal)) as raised:
        deploy(2, hosting, registry, audit)
    assert raised.value is refusal

    # and the model and config made for it are gone, and nothing is audited
    assert (hosting.models, hosting.configs) == before
    assert audit.entries == []


def refused(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateEndpoint")


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ResourceLimitExceeded", QUOTA, TooManyRequests),
        ("ThrottlingException", "Rate exceeded", TooManyRequests),
        ("ResourceInUse", "Resource in use", Conflict),
        ("ValidationException", 'Cannot create already existing endpoint "arn:aws:sagemaker:x".', Conflict),
        ("ValidationException", 'Cannot update in-progress endpoint "arn:aws:sagemaker:x".', Conflict),
        ("ValidationException", "Value 'ml.m5.huge' at 'instanceType' failed to satisfy constraint", InvalidRequest),
        ("ValidationException", 'Could not find endpoint configuration "arn:aws:sagemaker:x".', NotFound),
    ],
)
def test_sagemakers_refusals_are_the_status_the_caller_can_act_on_with_sagemakers_message(
    code: str, message: str, expected: type[ControlPlaneError]
) -> None:
    with pytest.raises(expected) as raised, refused_by_sagemaker("CreateEndpoint"):
        raise refused(code, message)

    assert raised.value.message == f"SageMaker refused CreateEndpoint ({code}): {message}"
    assert raised.value.status in {400, 404, 409, 429}


@pytest.mark.parametrize("code", ["AccessDeniedException", "InternalFailure"])
def test_a_denied_role_or_a_failing_service_stays_a_server_error(code: str) -> None:
    # the caller cannot fix either: our role, or SageMaker's outage (a 5xx, logged with its stack)
    with pytest.raises(ClientError), refused_by_sagemaker("CreateEndpoint"):
        raise refused(code, "no")


def test_a_deploy_deletes_what_earlier_deployments_left_and_keeps_what_serves() -> None:
    # Given an endpoint in service on v1, a replaced v0, an update to v2 that failed, a config and model a deploy
    # made a minute ago (still within its request), and a model of someone else's
    hosting, registry, audit = FakeHosting(), approved(3), FakeAudit()
    serving, replaced, failed, in_flight = (f"scratch-detector-v{v}-0a1b2c3d" for v in (1, 0, 2, 4))
    for name in (serving, replaced, failed, in_flight, "scratch-detector-v9-notours"):
        hosting.models[name] = "package"
        hosting.configs[name] = {"ProductionVariants": [{"ModelName": name}]}
    hosting.made[in_flight] = datetime.now(UTC) - timedelta(minutes=1)
    hosting.described = {"EndpointName": hosting.endpoint, "EndpointConfigName": serving, "EndpointStatus": "InService"}

    # When v3 is deployed
    deploy(3, hosting, registry, audit)

    # Then the replaced and the failed ones are gone; what serves, what is being deployed and the rest stay
    [new] = [name for name in hosting.configs if endpoints.served_version(name) == 3]
    kept = {serving, new, in_flight, "scratch-detector-v9-notours"}
    assert (set(hosting.configs), set(hosting.models)) == (kept, kept)
    assert audit.entries[-1].details["removed"] == f"{replaced} {failed}"


def test_a_deploy_that_cannot_list_earlier_deployments_goes_through() -> None:
    hosting, registry, audit = FakeHosting(), approved(1), FakeAudit()
    hosting.refuse["ListModels"] = TooManyRequests("SageMaker refused ListModels (ThrottlingException): Rate exceeded")

    deploy(1, hosting, registry, audit)

    assert (hosting.described or {}).get("EndpointStatus") == "Creating"
    assert audit.entries[-1].details["removed"] == ""

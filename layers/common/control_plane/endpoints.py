"""The stack's real-time endpoint: an Approved model package deployed behind it, and what it serves.

A deployment makes a model from the package (its image, model data and environment), a new endpoint config,
then creates the endpoint or updates it: SageMaker keeps serving the old config until the new one is in
service. Every deployment is audited.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from control_plane import duties
from control_plane.errors import Conflict, NotFound
from control_plane.models import AuditEntry, EndpointState
from control_plane.ports import AuditPort, HostingPort, RegistryPort
from pipeline_def.config import DeploymentSettings

# an endpoint in these states takes no other change until it settles
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}
_VERSION = re.compile(r"-v([0-9]+)-[0-9a-f]{8}$")


class DeployCommand(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    actor: str
    source: Literal["api", "event"]
    # model_registry.four_eyes: who started the model's run may not deploy it through the API
    four_eyes: bool = False


def resource_name(endpoint: str, version: int) -> str:
    """The model's and the endpoint config's name: the endpoint's, the version, and a suffix of its own."""
    return f"{endpoint}-v{version}-{secrets.token_hex(4)}"


def served_version(config_name: str | None) -> int | None:
    found = _VERSION.search(config_name or "")
    return int(found.group(1)) if found else None


def state(hosting: HostingPort, described: dict[str, Any]) -> EndpointState:
    config_name = described.get("EndpointConfigName")
    variant: dict[str, Any] = {}
    if config_name:
        variants = hosting.describe_config(config_name).get("ProductionVariants", [])
        variant = variants[0] if variants else {}
    return EndpointState(
        name=described["EndpointName"],
        status=described.get("EndpointStatus", "Unknown"),
        version=served_version(config_name),
        model=variant.get("ModelName"),
        endpoint_config=config_name,
        instance_type=variant.get("InstanceType"),
        instance_count=variant.get("InitialInstanceCount"),
        # an update in progress: SageMaker serves the old config until the new one is in service
        deploying=served_version(described.get("PendingDeploymentSummary", {}).get("EndpointConfigName")),
        failure_reason=described.get("FailureReason"),
        created=described.get("CreationTime"),
        last_modified=described.get("LastModifiedTime"),
    )


def get_endpoint(hosting: HostingPort) -> EndpointState:
    described = hosting.describe_endpoint()
    if described is None:
        raise NotFound(f"endpoint {hosting.endpoint} does not exist yet: POST /models/{{version}}/deploy creates it")
    return state(hosting, described)


def deploy(
    command: DeployCommand,
    settings: DeploymentSettings,
    *,
    registry: RegistryPort,
    hosting: HostingPort,
    audit: AuditPort,
) -> EndpointState:
    package = registry.describe(command.version)
    status = package.get("ModelApprovalStatus", "Unknown")
    if status != "Approved":
        raise Conflict(f"model version {command.version} is {status}: only an Approved model is deployed")
    duties.check_four_eyes(package, command.actor, "deploy", audit=audit, enabled=command.four_eyes)
    current = hosting.describe_endpoint()
    if current is not None and current.get("EndpointStatus") in BUSY:
        raise Conflict(f"endpoint {hosting.endpoint} is {current['EndpointStatus']}: deploy again once it settles")
    name = resource_name(hosting.endpoint, command.version)
    hosting.create_model(name, package["ModelPackageArn"])
    hosting.create_config(
        name, model=name, instance_type=settings.instance_type, count=settings.instance_count, version=command.version
    )
    if current is None:
        hosting.create_endpoint(name)
        action = "create"
    elif current.get("EndpointStatus") == "Failed" and not current.get("EndpointConfigName"):
        # a creation that failed cannot be updated: SageMaker wants it deleted first
        hosting.delete_endpoint()
        hosting.create_endpoint(name)
        action = "recreate"
    else:
        hosting.update_endpoint(name)
        action = "update"
    before = served_version(current.get("EndpointConfigName")) if current else None
    audit.record(
        AuditEntry(
            subject=f"endpoint#{hosting.endpoint}",
            action="deploy",
            actor=command.actor,
            source=command.source,
            at=datetime.now(UTC),
            details={
                "version": str(command.version),
                "from": "" if before is None else str(before),
                "how": action,
                "endpoint_config": name,
                "package": package["ModelPackageArn"],
            },
        )
    )
    return state(
        hosting, hosting.describe_endpoint() or {"EndpointName": hosting.endpoint, "EndpointStatus": "Creating"}
    )

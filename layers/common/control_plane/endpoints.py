"""The stack's real-time endpoint: an Approved model package deployed behind it, and what it serves.

A deployment makes a model from the package (its image, model data and environment), a new endpoint config,
then creates the endpoint or updates it: SageMaker keeps serving the old config until the new one is in
service (an update that fails leaves it serving the old one, InService with a FailureReason). A Failed endpoint
takes only DeleteEndpoint, so a deployment deletes it, with the model and config it failed on, and creates it again.
A request SageMaker refuses leaves nothing behind: the model and config made for it are deleted. A deployment
SageMaker accepted deletes the configs and models of earlier deployments that serve nothing any more (a replaced
version's, an update's that failed).

Every deployment SageMaker accepted is audited, and so is the deletion of a failed endpoint. A deployment SageMaker
refused is not: it changed nothing (what it made is gone), and its caller got SageMaker's reason; the audit trail
records changes, as a deploy the approval gate refuses is not recorded either.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from control_plane import duties
from control_plane.errors import Conflict, ControlPlaneError, NotFound
from control_plane.models import AuditEntry, EndpointState
from control_plane.observability import logger
from control_plane.ports import AuditPort, HostingPort, RegistryPort
from pipeline_def.config import DeploymentSettings

# an endpoint in these states takes no other change until it settles
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}
_VERSION = re.compile(r"-v([0-9]+)-[0-9a-f]{8}$")
# A deploy waits this long for a Failed endpoint's deletion, then creates it in the same request: a SageMaker user
# expects "deploy" to replace a failed endpoint, not to be told to delete it first. API Gateway gives a request 29 s
# and the rest of the deploy needs a few. A deletion that takes longer is a 409 "being deleted, deploy again" (as
# SageMaker's own in-progress states are), which the next call finishes (for auto_deploy, the event's retry).
DELETE_WAIT_SECONDS = 15.0
# A config or model younger than this may be another deployment's, still within its request (29 s at most)
SWEEP_AFTER = timedelta(minutes=10)


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
        variant = _variant(hosting, config_name)
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
    action = "update" if current is not None else "create"
    if current is not None and current.get("EndpointStatus") == "Failed":
        _delete_failed(hosting, current, command=command, audit=audit)
        current, action = None, "recreate"
    name = resource_name(hosting.endpoint, command.version)
    _bring_in(hosting, name, package["ModelPackageArn"], settings=settings, version=command.version, update=current)
    serving = current.get("EndpointConfigName") if current else None
    before = served_version(serving)
    removed = _sweep(hosting, keep={name, serving or name})
    details = {
        "version": str(command.version),
        "from": "" if before is None else str(before),
        "how": action,
        "endpoint_config": name,
        "package": package["ModelPackageArn"],
        "removed": " ".join(sorted(set(removed))),
    }
    audit.record(_entry(hosting, command, "deploy", details=details))
    return state(
        hosting, hosting.describe_endpoint() or {"EndpointName": hosting.endpoint, "EndpointStatus": "Creating"}
    )


def _entry(hosting: HostingPort, command: DeployCommand, action: str, *, details: dict[str, str]) -> AuditEntry:
    return AuditEntry(
        subject=f"endpoint#{hosting.endpoint}",
        action=action,
        actor=command.actor,
        source=command.source,
        at=datetime.now(UTC),
        details=details,
    )


def _bring_in(
    hosting: HostingPort,
    name: str,
    package_arn: str,
    *,
    settings: DeploymentSettings,
    version: int,
    update: dict[str, Any] | None,
) -> None:
    """Model `name` from the package, config `name` on it, and the endpoint created or updated (`update`: the
    endpoint as it is) to serve it; what it made is deleted when SageMaker refuses a step."""
    hosting.create_model(name, package_arn)
    try:
        hosting.create_config(
            name, model=name, instance_type=settings.instance_type, count=settings.instance_count, version=version
        )
    except Exception:
        _discard(hosting, models=[name])
        raise
    try:
        if update is None:
            hosting.create_endpoint(name)
        else:
            hosting.update_endpoint(name)
    except ControlPlaneError:
        # SageMaker refused the request: no endpoint uses them (an unknown outcome, say a lost answer, keeps them)
        _discard(hosting, configs=[name], models=[name])
        raise


def _delete_failed(hosting: HostingPort, failed: dict[str, Any], *, command: DeployCommand, audit: AuditPort) -> None:
    """Delete the Failed endpoint, and the config and model it failed on (they serve nothing); wait for the
    deletion (DELETE_WAIT_SECONDS), or raise a 409 saying to deploy again."""
    named = failed.get("EndpointConfigName")
    config = named if _ours(hosting, named) else None
    model = _model_of(hosting, config) if config else None
    hosting.delete_endpoint()
    details = {
        "why": f"Failed; deleted to deploy version {command.version}",
        "failure_reason": str(failed.get("FailureReason", "")),
        "endpoint_config": named or "",
    }
    audit.record(_entry(hosting, command, "delete", details=details))
    _discard(hosting, configs=[config] if config else [], models=[model] if model and _ours(hosting, model) else [])
    if not hosting.wait_deleted(DELETE_WAIT_SECONDS):
        raise Conflict(
            f"endpoint {hosting.endpoint} had failed and is being deleted: deploy version {command.version} again "
            "in a minute to create it"
        )


def _ours(hosting: HostingPort, name: str | None) -> bool:
    """A model or config a deployment of this endpoint made (resource_name); the roles may delete only those."""
    return bool(name) and str(name).startswith(f"{hosting.endpoint}-v") and served_version(name) is not None


def _variant(hosting: HostingPort, config: str) -> dict[str, Any]:
    """The config's one variant; none when the config is gone (a failed endpoint's, deleted with it)."""
    try:
        variants = hosting.describe_config(config).get("ProductionVariants", [])
    except NotFound:
        return {}
    return dict(variants[0]) if variants else {}


def _model_of(hosting: HostingPort, config: str) -> str | None:
    model = _variant(hosting, config).get("ModelName")
    return str(model) if model else None


def _sweep(hosting: HostingPort, *, keep: set[str]) -> list[str]:
    """Delete the configs and models of earlier deployments, all but `keep` (the config in service stays until the
    update replaces it); the names deleted. A deployment SageMaker accepted is not failed by this: what cannot be
    listed or deleted is logged, and the next deployment tries again."""
    made_before = datetime.now(UTC) - SWEEP_AFTER
    try:
        configs = hosting.list_configs(f"{hosting.endpoint}-v", made_before)
        models = hosting.list_models(f"{hosting.endpoint}-v", made_before)
    except ControlPlaneError as error:
        logger.warning("earlier deployments not swept", error=error.message)
        return []

    def dead(found: dict[str, datetime]) -> list[str]:
        return sorted(n for n, made in found.items() if made < made_before and n not in keep and _ours(hosting, n))

    return _discard(hosting, configs=dead(configs), models=dead(models))


def _discard(hosting: HostingPort, *, configs: Iterable[str] = (), models: Iterable[str] = ()) -> list[str]:
    """Delete configs and models that serve nothing; the names deleted. One that cannot be deleted is logged by name,
    not raised: the error that made it useless, if any, is the one the caller needs."""
    deletions = [
        *(("endpoint config", name, hosting.delete_config) for name in configs),
        *(("model", name, hosting.delete_model) for name in models),
    ]
    deleted: list[str] = []
    for kind, name, delete in deletions:
        try:
            delete(name)
        except Exception as error:  # a leftover to name, not a second failure to raise
            logger.warning("deployment leftover not deleted", kind=kind, name=name, error=str(error))
            continue
        deleted.append(name)
    return deleted

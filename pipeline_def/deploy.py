"""Compare the built definition with the deployed pipeline, and create or update it only when they differ.

An unchanged pipeline is left alone, so its step cache and version history stay as they are.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from pipeline_def.config import ConfigError, PipelineConfig
from pipeline_def.definition import build_definition

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


@dataclass(frozen=True)
class Plan:
    """What `upsert` would do to the deployed pipeline."""

    action: Literal["create", "update", "none"]
    pipeline_name: str
    definition: str
    # unified diff of the canonical JSON of the deployed and the new definition
    definition_diff: str = ""
    # pipeline settings (role, display name, description, parallelism) that differ
    changed_settings: list[str] = field(default_factory=list)


def canonical(definition: str) -> str:
    """One text per JSON value, so that formatting never shows up as a change."""
    return json.dumps(json.loads(definition), indent=2, sort_keys=True) + "\n"


def _settings(config: PipelineConfig) -> dict[str, Any]:
    return {
        "RoleArn": config.role_arn,
        "PipelineDisplayName": config.pipeline.display_name,
        "PipelineDescription": config.pipeline.description,
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": config.pipeline.max_parallel_steps},
    }


def _deployed(client: SageMakerClient, name: str) -> dict[str, Any] | None:
    # DescribePipeline's error for a missing pipeline differs between services and emulators;
    # an exact match in ListPipelines does not.
    pages = client.get_paginator("list_pipelines").paginate(PipelineNamePrefix=name)
    if not any(s.get("PipelineName") == name for page in pages for s in page["PipelineSummaries"]):
        return None
    return dict(client.describe_pipeline(PipelineName=name))


def located(client: SageMakerClient, config: PipelineConfig) -> PipelineConfig:
    """The config with its feature group's offline-store prefix, looked up when the config does not give it,
    so that a group created (or created again) under a new prefix is read where it is."""
    group = config.feature_group
    if group.offline_store_uri is not None:
        return config
    try:
        described = client.describe_feature_group(FeatureGroupName=group.name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"ResourceNotFound", "ResourceNotFoundException"}:
            raise
        reason = f"no feature group {group.name} in this account and region (the stack creates it: CreateFeatureGroup)"
        raise ConfigError("config", [("feature_group.name", reason)]) from error
    storage = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {})
    uri = storage.get("ResolvedOutputS3Uri")
    if not uri:
        raise ConfigError("config", [("feature_group.name", f"feature group {group.name} has no offline store")])
    settings = group.model_copy(update={"offline_store_uri": uri})
    return config.model_copy(update={"feature_group": settings})


def plan(client: SageMakerClient, config: PipelineConfig) -> Plan:
    config = located(client, config)
    name = config.pipeline.name
    definition = build_definition(config)
    deployed = _deployed(client, name)
    if deployed is None:
        return Plan("create", name, definition, definition_diff=_diff("", canonical(definition)))
    old, new = canonical(deployed["PipelineDefinition"]), canonical(definition)
    changed = [key for key, value in _settings(config).items() if deployed.get(key) != value]
    action: Literal["update", "none"] = "update" if old != new or changed else "none"
    return Plan(action, name, definition, definition_diff=_diff(old, new), changed_settings=changed)


def create_request(config: PipelineConfig, definition: str, token: str) -> dict[str, Any]:
    """CreatePipeline's arguments."""
    return {
        "PipelineName": config.pipeline.name,
        "PipelineDefinition": definition,
        "ClientRequestToken": token,
        "Tags": config.api_tags(),
        **_settings(config),
    }


def creation_token(definition: str, request_id: str | None) -> str:
    """CreatePipeline's ClientRequestToken. The same request redelivered (a deployment event sent again) gives the
    same token, so it creates one pipeline; another request gives another, even for the same definition, so a
    pipeline created again after it was deleted is not taken for a replay of the first creation."""
    if request_id is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{request_id}\n{definition}".encode()).hexdigest()


def upsert(client: SageMakerClient, config: PipelineConfig, request_id: str | None = None) -> Plan:
    """Create the pipeline, or update it if its definition or settings changed; otherwise do nothing.
    `request_id` names the request that asks (CloudFormation's RequestId, the event's id) across its retries."""
    planned = plan(client, config)
    if planned.action == "create":
        token = creation_token(planned.definition, request_id)
        try:
            client.create_pipeline(**create_request(config, planned.definition, token))
        except ClientError:
            # two syncs at once (a deployment's custom resource and the config's change event): the other one
            # created it first, so this one updates it if it still differs
            planned = plan(client, config)
            if planned.action == "create":
                raise
    if planned.action == "update":
        settings = _settings(config)
        client.update_pipeline(PipelineName=planned.pipeline_name, PipelineDefinition=planned.definition, **settings)
    return planned


def _diff(old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), "deployed", "built", n=3)
    return "".join(lines)

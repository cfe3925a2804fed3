"""Keep the deployed pipeline equal to the config: build the definition, update only what changed.

An invalid config, one whose training image does not exist, or one whose feature group is not there (its
offline-store location is looked up when the config does not give it) raises ConfigError and touches
nothing; callers alert and keep the pipeline as it was.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from control_plane.pipeline_config import load_config
from control_plane.ports import ConfigSource, DeployerPort, ImagesPort
from pipeline_def.config import ConfigError


class SyncOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["create", "update", "none", "delete"]
    pipeline: str
    config_version: int | None = None
    changed_settings: list[str] = []


def sync(
    source: ConfigSource, deployer: DeployerPort, images: ImagesPort, *, request_id: str | None = None
) -> SyncOutcome:
    """`request_id` names the request across its redeliveries (CloudFormation's RequestId, the event's id)."""
    config, version = load_config(source)
    # a pipeline that names a missing image fails every run at its first step: refuse it here instead
    problem = images.missing(config.image_uri)
    if problem is not None:
        raise ConfigError(source.name, [("image_uri", problem)])
    plan = deployer.upsert(config, request_id)
    return SyncOutcome(
        action=plan.action, pipeline=plan.pipeline_name, config_version=version, changed_settings=plan.changed_settings
    )

"""The active pipeline config: the SSM parameter's text, validated by pipeline_def's PipelineConfig."""

from __future__ import annotations

from typing import Protocol

from control_plane.models import ActiveConfig
from pipeline_def.config import ConfigError, PipelineConfig


class ConfigSource(Protocol):
    name: str

    def read(self) -> tuple[str, int]: ...


def active_config(source: ConfigSource) -> ActiveConfig:
    text, version = source.read()
    try:
        config = PipelineConfig.from_yaml(text, source.name)
    except ConfigError as error:
        problems = [f"{path}: {reason}" for path, reason in error.problems]
        return ActiveConfig(parameter=source.name, version=version, valid=False, errors=problems)
    return ActiveConfig(parameter=source.name, version=version, valid=True, config=config.model_dump(mode="json"))


def load_config(source: ConfigSource) -> tuple[PipelineConfig, int]:
    """The validated config and its version; ConfigError names every problem."""
    text, version = source.read()
    return PipelineConfig.from_yaml(text, source.name), version

"""The active pipeline config: the SSM parameter's text, validated by pipeline_def's PipelineConfig."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from control_plane.models import ActiveConfig

if TYPE_CHECKING:
    from pipeline_def.config import PipelineConfig

# pipeline_def (the config's 90 pydantic models) is imported when a config is read, not at cold start:
# most requests never read it


class ConfigSource(Protocol):
    name: str

    def read(self) -> tuple[str, int]: ...


def active_config(source: ConfigSource) -> ActiveConfig:
    from pipeline_def.config import ConfigError, PipelineConfig

    text, version = source.read()
    try:
        config = PipelineConfig.from_yaml(text, source.name)
    except ConfigError as error:
        problems = [f"{path}: {reason}" for path, reason in error.problems]
        return ActiveConfig(parameter=source.name, version=version, valid=False, errors=problems)
    return ActiveConfig(parameter=source.name, version=version, valid=True, config=config.model_dump(mode="json"))


def load_config(source: ConfigSource) -> tuple[PipelineConfig, int]:
    """The validated config and its version; ConfigError names every problem."""
    from pipeline_def.config import PipelineConfig

    text, version = source.read()
    return PipelineConfig.from_yaml(text, source.name), version

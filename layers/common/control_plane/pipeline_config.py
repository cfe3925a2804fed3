"""The active pipeline config: the SSM parameter's text, validated by pipeline_def's PipelineConfig."""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.costs import PriceTable
from control_plane.errors import NotFound
from control_plane.models import ActiveConfig
from control_plane.ports import ConfigSource

if TYPE_CHECKING:
    from pipeline_def.config import PipelineConfig

# pipeline_def (the config's 90 pydantic models) is imported when a config is read, not at cold start:
# most requests never read it


class GivenConfig:
    """A config text handed over whole: what CloudFormation passes the deployment's custom resource, so the
    pipeline is built from the very config that deployment wrote, not from whatever SSM holds by then."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text

    def read(self) -> tuple[str, int | None]:
        return self.text, None


def active_config(source: ConfigSource) -> ActiveConfig:
    from pipeline_def.config import ConfigError, PipelineConfig

    text, version = source.read()
    try:
        config = PipelineConfig.from_yaml(text, source.name)
    except ConfigError as error:
        problems = [f"{path}: {reason}" for path, reason in error.problems]
        return ActiveConfig(parameter=source.name, version=version, valid=False, errors=problems)
    return ActiveConfig(parameter=source.name, version=version, valid=True, config=config.model_dump(mode="json"))


def load_config(source: ConfigSource) -> tuple[PipelineConfig, int | None]:
    """The validated config and its version; ConfigError names every problem."""
    from pipeline_def.config import PipelineConfig

    text, version = source.read()
    return PipelineConfig.from_yaml(text, source.name), version


def price_table(source: ConfigSource) -> PriceTable | None:
    """The config's pricing table; None when there is no valid config (a run's cost is then absent, with why)."""
    from pipeline_def.config import ConfigError

    try:
        config, _ = load_config(source)
    except (ConfigError, NotFound):
        return None
    pricing = config.pricing
    return PriceTable(
        region=pricing.region, as_of=pricing.as_of, currency=pricing.currency, per_hour=dict(pricing.per_hour)
    )

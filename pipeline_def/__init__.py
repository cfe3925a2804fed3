"""Pipeline config -> SageMaker pipeline definition JSON (pure Python, deterministic, no SageMaker SDK)."""

from pipeline_def.config import ConfigError, PipelineConfig
from pipeline_def.definition import build_definition

__all__ = ["ConfigError", "PipelineConfig", "build_definition"]

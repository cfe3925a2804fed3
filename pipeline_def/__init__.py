"""Pipeline config -> SageMaker pipeline definition JSON (pure Python, deterministic, no SageMaker SDK).

The package's names load on first use: importing pipeline_def.names alone loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline_def.config import ConfigError, PipelineConfig
    from pipeline_def.definition import build_definition

__all__ = ["ConfigError", "PipelineConfig", "build_definition"]
_HOMES = {"ConfigError": "config", "PipelineConfig": "config", "build_definition": "definition"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pipeline_def' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline_def.{_HOMES[name]}"), name)

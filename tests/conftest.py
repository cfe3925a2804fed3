"""Fixtures shared by every test tier."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.template import local_values
from pipeline_def.config import DEFAULT_CONFIG_PATH, PipelineConfig
from sam_stack.template import Template

pytest_plugins = ["local.pytest_aws"]  # moto_endpoint, aws_env

# Powertools reads its service name and metrics namespace when control_plane.observability is first
# imported, which test collection does: take them from template.yaml's Globals, as a deployment would
# (resolved as the local stack resolves them: the service is the stack's name)
_TEMPLATE = Template.load()
_GLOBALS = _TEMPLATE.environment(next(iter(_TEMPLATE.of_type("AWS::Serverless::Function"))), local_values())
for _name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
    os.environ.setdefault(_name, _GLOBALS[_name])

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared beside the repository (CI has it; a user's fresh clone does not)."""
    if not (SHARED / "schemas").is_dir():
        pytest.skip(f"{SHARED} is absent: the shared schemas and datasets live beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def default_config_dict() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    return data


@pytest.fixture
def config_dict(default_config_dict: dict[str, Any]) -> dict[str, Any]:
    """A fresh, editable copy of config/pipeline.yaml."""
    return copy.deepcopy(default_config_dict)


@pytest.fixture(scope="session")
def default_config() -> PipelineConfig:
    return PipelineConfig.from_file()


def set_path(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Set `a.b.c` in a nested dict (returns the dict, for chaining)."""
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})  # a section the config leaves to its defaults
    node[last] = value
    return data


ConfigFactory = Callable[..., PipelineConfig]


@pytest.fixture
def make_config(config_dict: dict[str, Any]) -> ConfigFactory:
    """`make_config(**{"training.hyperparameters.epochs": 5})`: the default config with changes."""

    def make(**changes: Any) -> PipelineConfig:
        data = copy.deepcopy(config_dict)
        for dotted, value in changes.items():
            set_path(data, dotted, value)
        return PipelineConfig.from_dict(data)

    return make

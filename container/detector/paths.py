"""The SageMaker container contract: where a job finds its inputs and leaves its outputs.

Everything hangs off one root, `/opt/ml` in a real job; `OPT_ML_ROOT` moves it for local runs and tests.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "OPT_ML_ROOT"


def root() -> Path:
    return Path(os.environ.get(ROOT_ENV, "/opt/ml"))


def processing_input(name: str) -> Path:
    return root() / "processing" / "input" / name


def processing_output(name: str) -> Path:
    return root() / "processing" / "output" / name


def hyperparameters_file() -> Path:
    return root() / "input" / "config" / "hyperparameters.json"


def channel(name: str) -> Path:
    return root() / "input" / "data" / name


def model_dir() -> Path:
    return root() / "model"


def checkpoint_dir() -> Path:
    return root() / "checkpoints"


def failure_file() -> Path:
    return root() / "output" / "failure"

"""The pipeline definition (pipeline_def, the control plane's environment) and this container agree.

The definition is built by the root `.venv` as `make definition` does; every hyperparameter and container
argument it passes must be one the entry points accept, with the definition's default values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from detector import evaluate, hyperparameters, model, preprocess

from sam_stack.container import container_environment

from .conftest import REPO

ROOT_PYTHON = REPO / ".venv" / "bin" / "python"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    if not ROOT_PYTHON.is_file():
        pytest.skip(f"{ROOT_PYTHON} is absent: `make venv` builds the control plane's environment")
    built = subprocess.run(
        [str(ROOT_PYTHON), "-m", "pipeline_def", "build"], cwd=REPO, capture_output=True, text=True, check=True
    )
    data: dict[str, Any] = json.loads(built.stdout)
    return data


def resolve(value: Any, defaults: dict[str, Any]) -> str:
    """A step argument with the pipeline parameters at their defaults (and an earlier step's output URI an S3 URI)."""
    if isinstance(value, str):
        return value
    if "Get" in value and value["Get"].startswith("Steps."):
        return "s3://bucket/pipeline/run/" + str(value["Get"]).split("'")[1]
    if "Get" in value:
        return str(defaults[value["Get"].removeprefix("Parameters.")])
    join = value["Std:Join"]
    return str(join["On"]).join(resolve(part, defaults) for part in join["Values"])


def step(definition: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in definition["Steps"] if s["Name"] == name)
    return found


def defaults(definition: dict[str, Any]) -> dict[str, Any]:
    return {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}


def test_training_hyperparameters_are_all_accepted(definition: dict[str, Any]) -> None:
    values = {
        k: resolve(v, defaults(definition))
        for k, v in step(definition, "Train")["Arguments"]["HyperParameters"].items()
    }
    parsed = hyperparameters.parse(values)
    assert parsed.epochs == int(defaults(definition)["NumEpochs"])
    assert parsed.classes == ("scratch",)
    # the image's own defaults (a job started without hyperparameters) are the config's recipe
    assert parsed == hyperparameters.parse({})


def test_every_declared_backbone_is_a_gluoncv_yolo3() -> None:
    from gluoncv.model_zoo import model_zoo

    declared = hyperparameters.declared()["backbone"]["enum"]
    assert declared == list(model.BACKBONES)
    missing = [name for name in declared if f"yolo3_{name}_custom" not in model_zoo._models]
    assert missing == []


@pytest.mark.parametrize(("name", "parse"), [("Preprocess", preprocess.parse_args), ("Evaluate", evaluate.parse_args)])
def test_processing_arguments_are_all_accepted(definition: dict[str, Any], name: str, parse: Any) -> None:
    app = step(definition, name)["Arguments"]["AppSpecification"]
    assert app["ContainerEntrypoint"][:2] == ["python3", "-m"]
    assert app["ContainerEntrypoint"][2] == f"detector.{name.lower()}"
    parse([resolve(argument, defaults(definition)) for argument in app["ContainerArguments"]])


def test_the_image_train_command_runs_the_training_job(tmp_path: Path) -> None:
    # Given the image's PATH: bin/ first, python3 from this environment
    bin_dir = REPO / "container" / "bin"
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = container_environment({"PATH": path, "OPT_ML_ROOT": str(tmp_path)})
    # When SageMaker starts the training container with `train` and no data
    process = subprocess.run(["train"], env=env, capture_output=True, text=True, check=False, timeout=120)
    # Then the training job ran and reported why it cannot train
    assert process.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("train channel: no .rec file")

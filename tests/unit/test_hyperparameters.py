"""One declaration per hyperparameter: the config's model, the image's JSON copy and the image's checks agree."""

from __future__ import annotations

import dataclasses
import importlib
import math
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline_def import hyperparameters
from pipeline_def.hyperparameters import Hyperparameters
from pipeline_def.job_text import job_text

CONTAINER = Path(__file__).resolve().parents[2] / "container"
JSON_TYPES: dict[Any, str] = {int: "integer", float: "number", bool: "boolean", str: "string"}


@pytest.fixture(scope="module")
def image() -> Iterator[ModuleType]:
    """The image's detector.hyperparameters (standard library only, so it imports here too)."""
    sys.path.insert(0, str(CONTAINER))
    try:
        yield importlib.import_module("detector.hyperparameters")
    finally:
        sys.path.remove(str(CONTAINER))


def test_the_images_copy_is_current() -> None:
    assert hyperparameters.CONTAINER_SPEC.read_text(encoding="utf-8") == hyperparameters.container_spec_text(), (
        "container/detector/hyperparameters.json is stale: run `python -m pipeline_def hyperparameters --write`"
    )


def _json_type(annotation: Any) -> dict[str, Any]:
    if typing.get_origin(annotation) is tuple:
        return {"type": "array", "items": _json_type(typing.get_args(annotation)[0])}
    return {"type": JSON_TYPES[annotation]}


def test_the_images_typed_view_has_every_declared_name_with_its_type(image: ModuleType) -> None:
    hints = typing.get_type_hints(image.Hyperparameters)
    declared = image.declared()
    assert [f.name for f in dataclasses.fields(image.Hyperparameters)] == list(hints)
    assert set(hints) == set(declared)  # both directions: nothing declared is missing, nothing extra is typed
    for name, annotation in hints.items():
        rule = declared[name]
        assert _json_type(annotation) == {key: rule[key] for key in ("type", "items") if key in rule}, name


def test_the_images_defaults_are_the_declared_ones(image: ModuleType) -> None:
    defaults = image.parse({}).to_json()
    assert defaults.pop("classes") == hyperparameters.DEFAULT_CLASSES
    assert defaults == Hyperparameters().model_dump()


def _probes(name: str) -> list[Any]:
    """Values at, just inside and just outside every limit of one knob, and a few ordinary ones."""
    rule = hyperparameters.container_spec()["properties"][name]
    if "enum" in rule:
        return [*rule["enum"], "resnet50", "linear", ""]
    if rule["type"] == "boolean":
        return [True, False]
    if rule["type"] == "array":
        return [(), (1,), (0,), (5, 50), (111,), (112,), (200,)]
    step = 1 if rule["type"] == "integer" else 1e-6
    probes = [rule["default"], 0, -step, 1, 3, 64, 100, 450]
    for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        if key in rule:
            probes += [rule[key] - step, rule[key], rule[key] + step]
    if rule["type"] == "number":
        probes += [math.nan, math.inf]
    return probes


def _config_accepts(name: str, value: Any) -> dict[str, Any] | None:
    try:
        return Hyperparameters(**{name: value}).model_dump()
    except ValidationError:
        return None


def _image_accepts(image: ModuleType, name: str, value: Any) -> dict[str, Any] | None:
    try:
        parsed: dict[str, Any] = image.parse({name: job_text(value)}).to_json()
    except image.jobs.JobError:
        return None
    parsed.pop("classes")
    return parsed


@pytest.mark.parametrize("name", list(Hyperparameters.model_fields))
def test_the_image_accepts_exactly_what_the_config_accepts(image: ModuleType, name: str) -> None:
    for value in _probes(name):
        # both directions: what the config refuses the image refuses, and what it accepts the image takes as is
        assert _image_accepts(image, name, value) == _config_accepts(name, value), (name, value)


def test_the_rules_between_knobs_hold_on_both_sides(image: ModuleType) -> None:
    for values in (
        {"epochs": 5, "warmup_epochs": 5},
        {"epochs": 5, "warmup_epochs": 4},
        {"epochs": 5, "lr_decay_epochs": (5,)},
    ):
        try:
            config = Hyperparameters(**values).model_dump()
        except ValidationError:
            config = None
        texts = {name: job_text(value) for name, value in values.items()}
        try:
            parsed = image.parse(texts).to_json()
            parsed.pop("classes")
        except image.jobs.JobError:
            parsed = None
        assert parsed == config, values


def test_a_run_parameter_for_every_knob_a_run_may_set() -> None:
    run = hyperparameters.run_parameters()
    assert run["ignore_iou"] == "IgnoreIou"
    assert run["epochs"] == "NumEpochs"
    assert "lr_mode" not in run  # the config's choice, not a run's
    assert len(set(run.values())) == len(run)

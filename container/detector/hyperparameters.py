"""The training job's hyperparameters: SageMaker passes them as strings in hyperparameters.json.

Their names, types, defaults, ranges and choices are read from `hyperparameters.json` beside this file, which
`python -m pipeline_def hyperparameters --write` writes from the one declaration, pipeline_def/hyperparameters.py.
This module holds only the typed view the training code reads (a test checks it against the JSON both ways) and
the rules between two knobs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from detector import jobs

SPEC = Path(__file__).with_name("hyperparameters.json")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclass(frozen=True)
class Hyperparameters:
    backbone: str
    epochs: int
    batch_size: int
    learning_rate: float
    warmup_epochs: int
    seed: int
    lr_mode: str
    lr_decay: float
    lr_decay_epochs: tuple[int, ...]
    momentum: float
    weight_decay: float
    data_width: int
    data_height: int
    mixup: bool
    no_mixup_epochs: int
    label_smoothing: bool
    random_expand: bool
    anchor_match_iou: float
    ignore_iou: float
    giou_loss_weight: float
    val_interval: int
    ema_decay: float
    classes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@cache
def declared() -> dict[str, dict[str, Any]]:
    """{name: JSON schema of the value}: the one declaration, as the image carries it."""
    properties: dict[str, dict[str, Any]] = json.loads(SPEC.read_text(encoding="utf-8"))["properties"]
    return properties


def _convert(rule: dict[str, Any], text: str) -> Any:
    text = text.strip()
    kind = rule["type"]
    if kind == "boolean":
        if text.lower() not in TRUE + FALSE:
            raise ValueError("expected true or false")
        return text.lower() in TRUE
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "array":
        return tuple(_convert(rule["items"], part) for part in text.split(",") if part.strip())
    return text


def _default(rule: dict[str, Any]) -> Any:
    default = rule["default"]
    if rule["type"] == "array":
        return tuple(default)
    return float(default) if rule["type"] == "number" else default


def _bounds(rule: dict[str, Any]) -> str:
    low, above = rule.get("minimum"), rule.get("exclusiveMinimum")
    high, below = rule.get("maximum"), rule.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f"must be between {low} and {high}"
    parts = [f"above {above}" if above is not None else "", f"at least {low}" if low is not None else ""]
    parts += [f"at most {high}" if high is not None else "", f"below {below}" if below is not None else ""]
    return "must be " + " and ".join(part for part in parts if part)


def _within(rule: dict[str, Any], value: float) -> bool:
    if math.isnan(value):
        return False
    return bool(
        value >= rule.get("minimum", -math.inf)
        and value > rule.get("exclusiveMinimum", -math.inf)
        and value <= rule.get("maximum", math.inf)
        and value < rule.get("exclusiveMaximum", math.inf)
    )


def problem(name: str, value: Any) -> str | None:
    """What is wrong with one converted value by its declaration (range, multiple, choice, length), if anything."""
    rule = declared()[name]
    if "enum" in rule and value not in rule["enum"]:
        return f"{name}: {value!r} is not one of {', '.join(rule['enum'])}"
    if isinstance(value, tuple):
        return f"{name}: at least {rule['minItems']} value(s)" if len(value) < rule.get("minItems", 0) else None
    if isinstance(value, bool | str):
        return None
    if "multipleOf" in rule and value % rule["multipleOf"]:
        return f"{name}: {value} is not a multiple of {rule['multipleOf']}"
    return None if _within(rule, value) else f"{name}: {_bounds(rule)}, not {value}"


def _between_knobs(hp: Hyperparameters) -> list[str]:
    """The rules that tie two knobs (pipeline_def's Hyperparameters validates the same)."""
    problems = []
    if hp.warmup_epochs >= hp.epochs:
        problems.append(f"warmup_epochs: must be smaller than epochs ({hp.epochs})")
    if any(not 0 < epoch < hp.epochs for epoch in hp.lr_decay_epochs):
        problems.append(f"lr_decay_epochs: every epoch must lie between 1 and {hp.epochs - 1}")
    return problems


def parse(values: dict[str, Any]) -> Hyperparameters:
    """Hyperparameters from SageMaker's string map, the declared defaults for the rest; every problem is named in
    one JobError."""
    rules = declared()
    problems = []
    converted = {name: _default(rule) for name, rule in rules.items()}
    for name, raw in values.items():
        if name.startswith("sagemaker_"):
            continue  # the SDK's own entries
        if name not in rules:
            problems.append(f"{name}: unknown hyperparameter")
            continue
        try:
            converted[name] = _convert(rules[name], str(raw))
        except ValueError as error:
            problems.append(f"{name}: {raw!r} ({error})")
    problems += [found for name in values if name in rules for found in [problem(name, converted[name])] if found]
    if not problems:
        hp = Hyperparameters(**converted)
        problems = _between_knobs(hp)
    if problems:
        raise jobs.JobError("invalid hyperparameters: " + "; ".join(problems))
    return hp


def load(path: Path) -> Hyperparameters:
    if not path.is_file():
        return parse({})
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise jobs.JobError(f"{path}: not JSON ({error})") from None
    if not isinstance(values, dict):
        raise jobs.JobError(f"{path}: expected an object of hyperparameters")
    return parse(values)

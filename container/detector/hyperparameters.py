"""The training job's hyperparameters: SageMaker passes them as strings in hyperparameters.json."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detector import jobs
from detector.model import BACKBONES, STRIDE

LR_MODES = ("step", "cosine", "poly", "constant")


@dataclass(frozen=True)
class Hyperparameters:
    backbone: str = "mobilenet0.25"
    epochs: int = 112
    batch_size: int = 8
    learning_rate: float = 0.002
    warmup_epochs: int = 2
    seed: int = 42
    lr_mode: str = "cosine"
    lr_decay: float = 0.1
    lr_decay_epochs: tuple[int, ...] = ()
    momentum: float = 0.9
    weight_decay: float = 0.0005
    data_width: int = 320
    data_height: int = 224
    mixup: bool = False
    no_mixup_epochs: int = 20
    label_smoothing: bool = False
    random_expand: bool = False
    anchor_match_iou: float = 0.3
    ignore_iou: float = 0.7
    giou_loss_weight: float = 0.0
    val_interval: int = 1
    classes: tuple[str, ...] = field(default=("scratch",))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _convert(name: str, kind: Any, text: str) -> Any:
    text = text.strip()
    if kind is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no", ""):
            return False
        raise ValueError("expected true or false")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if name == "lr_decay_epochs":
        return tuple(int(part) for part in text.split(",") if part.strip())
    if name == "classes":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def parse(values: dict[str, Any]) -> Hyperparameters:
    """Hyperparameters from SageMaker's string map; every problem is named in one JobError."""
    kinds = typing.get_type_hints(Hyperparameters)
    problems = []
    converted: dict[str, Any] = {}
    for name, raw in values.items():
        if name.startswith("sagemaker_"):
            continue  # the SDK's own entries
        if name not in kinds:
            problems.append(f"{name}: unknown hyperparameter")
            continue
        try:
            converted[name] = _convert(name, kinds[name], str(raw))
        except ValueError as error:
            problems.append(f"{name}: {raw!r} ({error})")
    if not problems:
        hp = Hyperparameters(**converted)
        problems = check(hp)
    if problems:
        raise jobs.JobError("invalid hyperparameters: " + "; ".join(problems))
    return hp


def check(hp: Hyperparameters) -> list[str]:
    problems = []
    if hp.backbone not in BACKBONES:
        problems.append(f"backbone: {hp.backbone!r} is not one of {', '.join(BACKBONES)}")
    if hp.lr_mode not in LR_MODES:
        problems.append(f"lr_mode: {hp.lr_mode!r} is not one of {', '.join(LR_MODES)}")
    for name in ("epochs", "batch_size", "val_interval"):
        if getattr(hp, name) < 1:
            problems.append(f"{name}: must be at least 1")
    if not 0 <= hp.warmup_epochs < hp.epochs:
        problems.append(f"warmup_epochs: must be between 0 and epochs - 1 ({hp.epochs - 1})")
    for name in ("data_width", "data_height"):
        value = getattr(hp, name)
        if value < STRIDE or value % STRIDE:
            problems.append(f"{name}: {value} is not a positive multiple of {STRIDE}")
    if hp.learning_rate <= 0:
        problems.append("learning_rate: must be positive")
    if not 0 < hp.anchor_match_iou <= 1:
        problems.append("anchor_match_iou: must be above 0 and at most 1")
    if not 0 < hp.ignore_iou <= 1:
        problems.append("ignore_iou: must be above 0 and at most 1")
    if not 0 <= hp.giou_loss_weight <= 100:
        problems.append("giou_loss_weight: must be between 0 (GluonCV's loss alone) and 100")
    if not hp.classes:
        problems.append("classes: at least one class name")
    if any(not 0 < epoch < hp.epochs for epoch in hp.lr_decay_epochs):
        problems.append(f"lr_decay_epochs: every epoch must lie between 1 and {hp.epochs - 1}")
    return problems


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

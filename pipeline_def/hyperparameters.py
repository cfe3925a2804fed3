"""The training job's hyperparameters, declared once: name, type, default, range, help and, for the ones a run may
set, the pipeline parameter's name.

Every other form is derived from `Hyperparameters`:
- the config's `training.hyperparameters` is this model (a config sets only what it changes);
- the pipeline's run-time parameters and the training job's HyperParameters map (`pipeline_def.definition`);
- the image's names, types, defaults, ranges and choices: `container/detector/hyperparameters.json`, written by
  `python -m pipeline_def hyperparameters --write` (tests/unit/test_hyperparameters.py fails while it is stale,
  and probes the image's checks against this model in both directions);
- the SageMaker SDK cross-check's map (`bench/sdk_baseline.py`) and `make bench-quality`'s flags (from the JSON).

A new hyperparameter is one field here, one typed field in `container/detector/hyperparameters.py`, the JSON
rewritten, and the README's row if a run may set it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

Backbone = Literal["mobilenet1.0", "mobilenet0.25", "darknet53"]
LrMode = Literal["step", "cosine", "poly", "constant"]
STRIDE = 32  # YOLOv3's coarsest feature map: the data shape is a multiple of it
# The classes the image trains when a job names none; the pipeline passes the config's `classes`
DEFAULT_CLASSES = ("scratch",)
CONTAINER_SPEC = Path(__file__).resolve().parents[1] / "container" / "detector" / "hyperparameters.json"
RUN_PARAMETER = "run_parameter"  # the JSON schema's key for a knob's pipeline parameter
LIMITS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf", "minItems")


def knob(default: Any, description: str, *, run: str | None = None, **constraints: Any) -> Any:
    """A hyperparameter's declaration; `run` names the pipeline parameter through which a run may set it."""
    extra: dict[str, JsonValue] | None = {RUN_PARAMETER: run} if run else None
    return Field(default=default, description=description, json_schema_extra=extra, **constraints)


class Hyperparameters(BaseModel):
    """The training recipe. The defaults are the recipe measured from scratch on the metal-tags photographs
    (`make bench-quality`, 2 cores); the README's Results section gives the figures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: Backbone = knob("mobilenet0.25", "GluonCV YOLOv3 backbone", run="Backbone")
    # 112 epochs scored a test mAP@0.5 of 0.77 in 18.0 minutes, where issue 15's starting point (100 epochs,
    # GluonCV's data pipeline) scored 0.73 in 20.4: without pretrained weights the small backbone's epochs win
    epochs: int = knob(112, "training epochs", run="NumEpochs", gt=0, le=10_000)
    batch_size: int = knob(8, "images per update, over all hosts and devices", run="BatchSize", gt=0, le=512)
    learning_rate: float = knob(0.002, "peak learning rate (SGD)", run="LearningRate", gt=0, le=1)
    warmup_epochs: int = knob(2, "epochs of linear warm-up from 0", run="WarmupEpochs", ge=0)
    seed: int = knob(42, "initialisation, augmentation and batch order", run="Seed", ge=0, le=2**31 - 1)
    lr_mode: LrMode = knob("cosine", "learning-rate schedule after the warm-up")
    lr_decay: float = knob(0.1, "a step schedule's factor", gt=0, le=1)
    lr_decay_epochs: tuple[int, ...] = knob((), "epochs at which a step schedule decays")
    momentum: float = knob(0.9, "SGD momentum", ge=0, lt=1)
    weight_decay: float = knob(0.0005, "SGD weight decay", ge=0, lt=1)
    # the photographs are 450x300. 320x224 keeps the scratches visible and trains twice as fast as 480x320, so
    # more epochs fit: it scored better in the same time. (GluonCV's COCO anchors stay, though at this shape the
    # largest two match no box: nine anchors fitted by k-means scored 0.72 here against 0.77, 0.36 against 0.68
    # in make run)
    data_width: int = knob(320, "network input width (pixels)", run="DataWidth", ge=STRIDE, le=2048, multiple_of=STRIDE)
    data_height: int = knob(
        224, "network input height (pixels)", run="DataHeight", ge=STRIDE, le=2048, multiple_of=STRIDE
    )
    mixup: bool = knob(False, "mix pairs of images (GluonCV's mixup)")
    no_mixup_epochs: int = knob(20, "last epochs trained without mixup", ge=0)
    label_smoothing: bool = knob(False, "smooth the class targets")
    # zooming out makes 1-3 px scratches sub-pixel
    random_expand: bool = knob(False, "zoom out at random (GluonCV's expand)")
    # YOLOv4's iou_thresh; 1 is GluonCV's rule. On metal-tags 0.3 scored a test mAP of 0.836 in 16.6 min
    # against 0.775 in 17.0 with 1
    anchor_match_iou: float = knob(
        0.3,
        "anchors whose IoU with a box's shape reaches this learn the box too (1: the best only)",
        run="AnchorMatchIou",
        gt=0,
        le=1,
    )
    # GluonCV and darknet's yolov3.cfg: 0.7; the YOLOv3 paper: 0.5. 0.5 lifted make run from 0.807 to 0.834 but
    # scored 0.797 on metal-tags against 0.836 (another day; 71 test boxes)
    ignore_iou: float = knob(
        0.7, "a prediction that overlaps a box by more than this is no negative", run="IgnoreIou", gt=0, le=1
    )
    # weight 1 gave make run's default seed 0.742 against 0.743 (recall 0.70 against 0.77): off until metal-tags
    # shows a gain
    giou_loss_weight: float = knob(
        0.0, "weight of a GIoU term beside GluonCV's box losses (0: none)", run="GiouLossWeight", ge=0, le=100
    )
    val_interval: int = knob(1, "validate every this many epochs (and after the last)", gt=0)
    # A moving average of the weights (TF's ExponentialMovingAverage, YOLOv5's ModelEMA) smooths the epoch-to-epoch
    # jumps of validation mAP; it is validated beside the weights and exported only when it validates better. Off
    # until `make bench-quality`'s seeds show a gain; 0.99 first: at about 20 updates an epoch on metal-tags it
    # spans the last 5 epochs (1 / (1 - d) = 100 updates). No run parameter: it changes what is exported, not how
    # the weights learn, so the recipe (the config) decides it
    ema_decay: float = knob(
        0.0,
        "decay of an exponential moving average of the weights, exported when it validates better (0: none)",
        ge=0,
        lt=1,
    )

    @model_validator(mode="after")
    def _epochs_consistent(self) -> Hyperparameters:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        late = [e for e in self.lr_decay_epochs if not 0 < e < self.epochs]
        if late:
            raise ValueError(f"lr_decay_epochs {list(late)} must lie strictly between 0 and epochs ({self.epochs})")
        return self


def run_parameters() -> dict[str, str]:
    """{field: pipeline parameter} for the knobs a run may set, in declaration order."""
    found = {}
    for name, field in Hyperparameters.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and RUN_PARAMETER in extra:
            found[name] = str(extra[RUN_PARAMETER])
    return found


def container_spec() -> dict[str, Any]:
    """What the image reads as its hyperparameters' declaration: this model's JSON schema, plus `classes`."""
    schema = Hyperparameters.model_json_schema()
    properties = {name: _without_titles(rule) for name, rule in schema["properties"].items()}
    properties["classes"] = {
        "default": list(DEFAULT_CLASSES),
        "description": "the class names, in the order of their ids (the pipeline passes the config's classes)",
        "items": {"type": "string"},
        "minItems": 1,
        "type": "array",
    }
    return {
        "description": "Generated by `python -m pipeline_def hyperparameters --write` from "
        "pipeline_def/hyperparameters.py: edit that, not this.",
        "properties": properties,
    }


def container_spec_text() -> str:
    return json.dumps(container_spec(), indent=2, sort_keys=True) + "\n"


def _without_titles(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "title"}


def table() -> str:
    """One line per hyperparameter: name, run parameter, default, constraints and help."""
    lines = []
    for name, rule in container_spec()["properties"].items():
        limits = ", ".join(f"{key} {rule[key]}" for key in LIMITS if key in rule)
        choices = f"one of {', '.join(map(str, rule['enum']))}" if "enum" in rule else ""
        run = rule.get(RUN_PARAMETER, "")
        lines.append(
            f"{name:<18} {run:<15} {json.dumps(rule['default']):<16} {limits or choices:<34} {rule['description']}"
        )
    header = f"{'hyperparameter':<18} {'run parameter':<15} {'default':<16} {'limits':<34} help"
    return "\n".join([header, *lines]) + "\n"

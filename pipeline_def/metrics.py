"""What the training container logs once per epoch, and the regexes SageMaker reads it with.

The container writes one line per epoch, for example:

    epoch=3 obj_loss=1.2345 center_loss=0.5 scale_loss=0.25 cls_loss=0.125 lr=0.001 speed=5.9 val_map=0.4567

`val_map` appears on the epochs that run validation, and `ema_val_map` (the moving average of the weights) beside it
when the job keeps one (hyperparameter ema_decay). SageMaker applies each regex to every log line and
records the first group as the metric's value (the TrainingJob's FinalMetricDataList and CloudWatch).
"""

from __future__ import annotations

import re

NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"

# (metric name, key in the epoch line)
EPOCH_METRICS: tuple[tuple[str, str], ...] = (
    ("train:obj_loss", "obj_loss"),
    ("train:center_loss", "center_loss"),
    ("train:scale_loss", "scale_loss"),
    ("train:cls_loss", "cls_loss"),
    ("train:box_loss", "box_loss"),  # the GIoU term, when the job trains with one (giou_loss_weight)
    ("train:learning_rate", "lr"),
    ("train:images_per_second", "speed"),
    ("validation:map", "val_map"),
    ("validation:ema_map", "ema_val_map"),  # the weights' moving average, when the job keeps one (ema_decay)
)


def metric_definitions() -> list[dict[str, str]]:
    """AlgorithmSpecification.MetricDefinitions for the training job."""
    return [{"Name": name, "Regex": rf"\bepoch=[0-9]+\b.*\b{key}={NUMBER}"} for name, key in EPOCH_METRICS]


# the loss terms of an epoch line, summed for a person (the GIoU term's too, when the job has one)
LOSS_KEYS = tuple(key for _, key in EPOCH_METRICS if key.endswith("_loss"))


def epoch_fields(line: str) -> dict[str, str] | None:
    """The `key=value` fields of an epoch line; None for any other log line."""
    if not re.match(r"epoch=[0-9]+\b", line.strip()) or "obj_loss=" not in line:
        return None
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def time_left(seconds: float) -> str:
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest} min left" if rest else f"about {hours} h left"


def epoch_progress(fields: dict[str, str], *, total: int | None, seconds_per_epoch: float | None) -> str:
    """An epoch line for a person: `epoch 9/19  loss 1.234  val mAP 0.456  (35.2 img/s)  about 4 min left`.

    The container counts epochs from 0; a person counts the one that has just ended from 1, so `epoch=8` of 19 is
    `epoch 9/19`. The time left is the epochs still to run at `seconds_per_epoch` (the mean so far); without the
    total or a mean there is none."""
    done = int(fields["epoch"]) + 1
    loss = sum(float(fields.get(key, 0)) for key in LOSS_KEYS)
    val = f"  val mAP {float(fields['val_map']):.3f}" if "val_map" in fields else ""
    text = f"epoch {done}/{total}" if total else f"epoch {done}"
    text += f"  loss {loss:.3f}{val}  ({fields.get('speed', '?')} img/s)"
    if total and seconds_per_epoch is not None:
        text += f"  {time_left(max(0, total - done) * seconds_per_epoch)}" if done < total else "  done"
    return text

"""What the training container logs once per epoch, and the regexes SageMaker reads it with.

The container writes one line per epoch, for example:

    epoch=3 obj_loss=1.2345 center_loss=0.5 scale_loss=0.25 cls_loss=0.125 lr=0.001 speed=5.9 val_map=0.4567

`val_map` appears on the epochs that run validation. SageMaker applies each regex to every log line and
records the first group as the metric's value (the TrainingJob's FinalMetricDataList and CloudWatch).
"""

from __future__ import annotations

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
)


def metric_definitions() -> list[dict[str, str]]:
    """AlgorithmSpecification.MetricDefinitions for the training job."""
    return [{"Name": name, "Regex": rf"\bepoch=[0-9]+\b.*\b{key}={NUMBER}"} for name, key in EPOCH_METRICS]

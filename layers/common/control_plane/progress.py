"""A training job's epoch progress from its CloudWatch Logs events (DescribeTrainingJob carries none).

SageMaker writes a training job's stdout to the log group `/aws/sagemaker/TrainingJobs`, stream
`<TrainingJobName>/algo-<n>-<epoch seconds>`; the container logs one line per epoch (pipeline_def.metrics)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pipeline_def import metrics

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# CloudWatch Logs' filter pattern for the container's epoch lines (`epoch=8 obj_loss=... ...`)
EPOCH_PATTERN = '"obj_loss="'


def train_progress(
    events: Iterable[dict[str, Any]], *, started: datetime | None, total: int | None
) -> dict[str, Any] | None:
    """The latest epoch line among `events` (FilterLogEvents' events: `timestamp` in ms, `message`) as
    {epoch, total, seconds_per_epoch, fields, text}; None when no event is an epoch line.

    The seconds per epoch are the mean so far: the job's start to the latest epoch event, over the epochs done."""
    latest: tuple[int, dict[str, str]] | None = None
    for event in events:
        fields = metrics.epoch_fields(str(event.get("message", "")))
        if fields is not None and (latest is None or int(event["timestamp"]) >= latest[0]):
            latest = (int(event["timestamp"]), fields)
    if latest is None:
        return None
    at, fields = latest
    done = int(fields["epoch"]) + 1
    per_epoch = None
    if started is not None:
        elapsed = datetime.fromtimestamp(at / 1000, UTC) - started
        per_epoch = max(0.0, elapsed.total_seconds()) / done
    return {
        "epoch": done,
        "total": total,
        "seconds_per_epoch": per_epoch,
        "fields": fields,
        "text": metrics.epoch_progress(fields, total=total, seconds_per_epoch=per_epoch),
    }

"""The epoch line a person reads while a run trains (`make run`, and any command that follows a run)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local.executor.jobs import Job
from local.run import Progress
from pipeline_def import metrics

LINE = (
    "epoch=8 obj_loss=1.0000 center_loss=0.2500 scale_loss=0.2500 cls_loss=0.0000 lr=0.004 speed=35.20 val_map=0.4567"
)


def test_the_ninth_epoch_of_nineteen_at_30_s_each_has_about_5_minutes_left() -> None:
    # Given the container's 0-based epoch 8 of 19, at a mean of 30 s per epoch (10 left)
    fields = metrics.epoch_fields(LINE)
    assert fields is not None

    # Then a person reads the ninth of 19 and 10 x 30 s = 5 min left
    assert metrics.epoch_progress(fields, total=19, seconds_per_epoch=30.0) == (
        "epoch 9/19  loss 1.500  val mAP 0.457  (35.20 img/s)  about 5 min left"
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(59, "under a minute left"), (61, "about 1 min left"), (3599, "about 1 h left"), (3900, "about 1 h 5 min left")],
)
def test_time_left_in_words(seconds: float, said: str) -> None:
    assert metrics.time_left(seconds) == said


def test_without_a_total_or_a_mean_there_is_no_time_left_and_the_last_epoch_is_done() -> None:
    fields = metrics.epoch_fields(LINE)
    assert fields is not None
    assert metrics.epoch_progress(fields, total=None, seconds_per_epoch=30.0).startswith("epoch 9  loss")
    assert metrics.epoch_progress(fields, total=19, seconds_per_epoch=None).endswith("img/s)")
    assert metrics.epoch_progress(fields, total=9, seconds_per_epoch=30.0).endswith("  done")
    # other log lines are not epoch lines
    assert metrics.epoch_fields("model exported best_epoch=3") is None


def test_make_runs_progress_prints_the_epoch_of_the_jobs_total_with_the_mean_time_left(tmp_path: Path) -> None:
    # Given a 19-epoch training job that started 90 s ago and has logged its third epoch line
    started = datetime.now(UTC) - timedelta(seconds=90)
    job = Job(kind="training", name="t", arn="arn:t", request={"HyperParameters": {"epochs": "19"}},
              folder=tmp_path, started=started)  # fmt: skip
    out = io.StringIO()
    progress = Progress(out=out)
    for epoch in range(3):
        progress.job_line(job, LINE.replace("epoch=8", f"epoch={epoch}"))
    progress.job_line(job, "some other line")

    # Then the last line says the third of 19, with 16 epochs at the mean 30 s left
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[-1].endswith("Train  epoch 3/19  loss 1.500  val mAP 0.457  (35.20 img/s)  about 8 min left")

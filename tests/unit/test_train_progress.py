"""A run's Train progress from the training job's CloudWatch Logs events (control_plane/progress.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.progress import train_progress

STARTED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _event(seconds_after_start: float, message: str) -> dict[str, object]:
    return {"timestamp": int((STARTED + timedelta(seconds=seconds_after_start)).timestamp() * 1000), "message": message}


def _epoch(n: int) -> str:
    return f"epoch={n} obj_loss=1.0000 center_loss=0.2500 scale_loss=0.2500 cls_loss=0.0000 speed=35.20 val_map=0.4567"


def test_the_latest_epoch_line_with_the_mean_epoch_time_gives_the_time_left() -> None:
    # Given a job started at 12:00 that logged epochs 0..8 every 30 s, out of order, among other lines
    events = [_event(30 * (n + 1), _epoch(n)) for n in (8, 0, 3)] + [_event(400, "model exported best_epoch=3")]

    progress = train_progress(events, started=STARTED, total=19)

    # Then the ninth epoch of 19 is the latest, at 270 s / 9 = 30 s each, so 10 x 30 s = 5 min left
    assert progress is not None
    assert progress["epoch"] == 9
    assert progress["seconds_per_epoch"] == 30.0
    assert progress["text"] == "epoch 9/19  loss 1.500  val mAP 0.457  (35.20 img/s)  about 5 min left"


def test_no_epoch_line_yet_is_no_progress() -> None:
    assert train_progress([_event(5, "loading data")], started=STARTED, total=19) is None
    assert train_progress([], started=STARTED, total=19) is None


def test_without_a_start_time_there_is_no_time_left() -> None:
    progress = train_progress([_event(30, _epoch(0))], started=None, total=19)

    assert progress is not None
    assert progress["seconds_per_epoch"] is None
    assert progress["text"].startswith("epoch 1/19  loss")
    assert "left" not in progress["text"]

"""Checkpoints to /opt/ml/checkpoints every epoch, and the resume from them after a spot interruption.

SageMaker copies the folder to and from the job's CheckpointConfig S3 prefix. A checkpoint resumes only the same
training: the same hyperparameters and the same training data size (its fingerprint), and, for a job that averages
its weights (ema_decay), the average and its update count.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mxnet as mx
from mxnet import gluon

from detector import hyperparameters, jobs
from detector.averaging import WeightAverage

log = logging.getLogger("detector.train")

STATE_FILE = "state.json"
RAW, EMA = "raw", "ema"  # the weights an epoch validated: the trained ones, their moving average


@dataclass
class Progress:
    """What a checkpoint restores: the epochs done, the best so far (of the raw weights and of their average) and
    the curves."""

    epochs_done: int = 0
    best_map: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    ema_best_map: float | None = None
    ema_best_epoch: int | None = None

    def record(self, entry: dict[str, Any]) -> tuple[str, ...]:
        """One more epoch done (its curves' entry); which of its weights (RAW, EMA) are the best so far."""
        improved = []
        if is_better(entry["val_map"], self.best_map):
            self.best_map, self.best_epoch = entry["val_map"], entry["epoch"]
            improved.append(RAW)
        if is_better(entry.get("ema_val_map"), self.ema_best_map):
            self.ema_best_map, self.ema_best_epoch = entry["ema_val_map"], entry["epoch"]
            improved.append(EMA)
        self.history.append(entry)
        self.epochs_done = entry["epoch"]
        return tuple(improved)

    @property
    def weights(self) -> str:
        """The weights exported: the average only when it validated better than the raw weights' best."""
        if self.ema_best_map is not None and (self.best_map is None or self.ema_best_map > self.best_map):
            return EMA
        return RAW

    @property
    def exported(self) -> tuple[int | None, float | None]:
        """The exported weights' best epoch and validation mAP (None without validation)."""
        return (self.ema_best_epoch, self.ema_best_map) if self.weights == EMA else (self.best_epoch, self.best_map)


def is_better(val_map: float | None, best_map: float | None) -> bool:
    """Whether this epoch becomes the exported one. Ties go to the later epoch, so a run whose mAP never
    rises above zero still exports its longest-trained weights rather than nothing."""
    return val_map is not None and (best_map is None or val_map >= best_map)


def fingerprint(hp: hyperparameters.Hyperparameters, train: Path) -> str:
    """Checkpoints resume only the same training: same hyperparameters and training data size."""
    text = json.dumps({"hp": hp.to_json(), "train_bytes": train.stat().st_size}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoints:
    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.params = folder / "latest.params"
        self.states = folder / "latest.states"
        self.best = folder / "best.params"
        self.average = folder / "latest-ema.params"
        self.best_average = folder / "best-ema.params"
        self.state = folder / STATE_FILE

    def restore(
        self, net: Any, trainer: gluon.Trainer, ctx: list[mx.Context], *, average: WeightAverage | None = None
    ) -> Progress:
        """The checkpoint's weights, optimizer state and progress (and `average`'s state, when the job averages);
        a fresh start when there is none or it is not this training's, with the reason."""
        if not self.state.is_file():
            return Progress()
        state = json.loads(self.state.read_text(encoding="utf-8"))
        reason = self._mismatch(state, average)
        if reason:
            jobs.event(log, "checkpoint ignored", reason=reason)
            return Progress()
        net.load_parameters(str(self.params), ctx=ctx)
        trainer.load_states(str(self.states))
        if average is not None:
            average.load(self.average, state["ema_updates"])
        progress = Progress(**{name: state[name] for name in Progress.__dataclass_fields__})
        jobs.event(log, "resumed from checkpoint", epochs_done=progress.epochs_done, best_map=progress.best_map)
        return progress

    def _mismatch(self, state: dict[str, Any], average: WeightAverage | None) -> str | None:
        if state.get("fingerprint") != self.fingerprint:
            return "different hyperparameters or data"
        if average is not None and (state.get("ema_updates") is None or not self.average.is_file()):
            # the average of the epochs done cannot be rebuilt: resuming would export a different model
            return "no weight average (ema_decay) in it"
        return None

    def save(
        self,
        net: Any,
        trainer: gluon.Trainer,
        progress: Progress,
        *,
        improved: tuple[str, ...],
        average: WeightAverage | None = None,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        net.save_parameters(str(self.params))
        trainer.save_states(str(self.states))
        if RAW in improved:
            net.save_parameters(str(self.best))
        state = {"fingerprint": self.fingerprint, **progress.__dict__}
        if average is not None:
            average.save(self.average)
            if EMA in improved:
                average.save(self.best_average)
            state["ema_updates"] = average.updates
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        temporary.replace(self.state)  # a spot interruption never leaves half a state file

"""Checkpoints to /opt/ml/checkpoints every epoch, and the resume from them after a spot interruption.

SageMaker copies the folder to and from the job's CheckpointConfig S3 prefix. A checkpoint resumes only the same
training: the same hyperparameters and the same training data size (its fingerprint).
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

log = logging.getLogger("detector.train")

STATE_FILE = "state.json"


@dataclass
class Progress:
    """What a checkpoint restores: the epochs done, the best so far and the curves."""

    epochs_done: int = 0
    best_map: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self, entry: dict[str, Any]) -> bool:
        """One more epoch done (its curves' entry); whether its weights become the exported ones."""
        improved = is_better(entry["val_map"], self.best_map)
        if improved:
            self.best_map, self.best_epoch = entry["val_map"], entry["epoch"]
        self.history.append(entry)
        self.epochs_done = entry["epoch"]
        return improved


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
        self.state = folder / STATE_FILE

    def restore(self, net: Any, trainer: gluon.Trainer, ctx: list[mx.Context]) -> Progress:
        if not self.state.is_file():
            return Progress()
        state = json.loads(self.state.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint:
            jobs.event(log, "checkpoint ignored", reason="different hyperparameters or data")
            return Progress()
        net.load_parameters(str(self.params), ctx=ctx)
        trainer.load_states(str(self.states))
        progress = Progress(state["epochs_done"], state["best_map"], state["best_epoch"], state["history"])
        jobs.event(log, "resumed from checkpoint", epochs_done=progress.epochs_done, best_map=progress.best_map)
        return progress

    def save(self, net: Any, trainer: gluon.Trainer, progress: Progress, *, improved: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        net.save_parameters(str(self.params))
        trainer.save_states(str(self.states))
        if improved:
            net.save_parameters(str(self.best))
        state = {"fingerprint": self.fingerprint, **progress.__dict__}
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        temporary.replace(self.state)  # a spot interruption never leaves half a state file

"""The end of a training job: the model folder SageMaker uploads. The best epoch's network (symbol and parameters,
NMS set at the threshold chosen with the score threshold, on the CPU), its metadata (`model-meta.json`: what
evaluate, serve and the approver read) and the training curves (`training_curves.json` and `.png`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx

from detector import hyperparameters, jobs, model, plots
from detector.checkpoints import Progress
from detector.training_data import Datasets
from detector.validation import Validator

log = logging.getLogger("detector.train")

CURVES_FILE = "training_curves.json"
CURVES_PICTURE = "training_curves.png"


@dataclass(frozen=True, kw_only=True)
class Trained:
    """What a finished job exports: its network, how it got there and the data it learned from."""

    net: Any
    progress: Progress
    best: Path  # the best epoch's checkpoint
    data: Datasets
    validator: Validator


def write_model(trained: Trained, hp: hyperparameters.Hyperparameters, folder: Path) -> None:
    net, progress = trained.net, trained.progress
    net.collect_params().reset_ctx(mx.cpu())  # the exported model runs on whatever host serves it
    if progress.best_epoch is not None and trained.best.is_file():
        net.load_parameters(str(trained.best), ctx=mx.cpu())
    else:
        jobs.event(log, "no validation mAP: exporting the last epoch")
    meta = metadata(hp, progress, trained.data)
    meta |= trained.validator.thresholds(net)
    model.export(net, folder, meta, width=hp.data_width, height=hp.data_height)
    curves = {"epochs": progress.history, "best_epoch": meta["best_epoch"], "best_val_map": progress.best_map}
    (folder / CURVES_FILE).write_text(json.dumps(curves, indent=2) + "\n", encoding="utf-8")
    plots.training_curves(progress.history, folder / CURVES_PICTURE)
    jobs.event(log, "model exported", best_epoch=meta["best_epoch"], best_val_map=progress.best_map)


def metadata(hp: hyperparameters.Hyperparameters, progress: Progress, data: Datasets) -> dict[str, Any]:
    return {
        "classes": list(hp.classes),
        "backbone": hp.backbone,
        "data_width": hp.data_width,
        "data_height": hp.data_height,
        "mean": list(model.MEAN),
        "std": list(model.STD),
        "best_epoch": progress.best_epoch or progress.epochs_done,
        "best_val_map": progress.best_map,
        "epochs": hp.epochs,
        "hyperparameters": hp.to_json(),
        # what the approver sees: how much data, and how long the epochs took (resumed ones included)
        "train_images": len(data.train),
        "validation_images": len(data.validation) if data.validation is not None else 0,
        "training_seconds": round(sum(e["seconds"] + e.get("validation_seconds", 0.0) for e in progress.history), 1),
    }

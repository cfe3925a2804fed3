"""The end of a training job: the model folder SageMaker uploads. The best epoch's network (symbol and parameters:
the raw weights, or their moving average when it validated better; NMS set at the threshold chosen with the score
threshold on those weights, on the CPU), its metadata (`model-meta.json`: what evaluate, serve and the approver
read) and the training curves (`training_curves.json` and `.png`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx

from detector import hyperparameters, jobs, model, plots
from detector.checkpoints import EMA, Progress
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
    best_ema: Path  # the best epoch's weight average (a job with ema_decay)
    data: Datasets
    validator: Validator


def write_model(trained: Trained, hp: hyperparameters.Hyperparameters, folder: Path) -> None:
    net, progress = trained.net, trained.progress
    net.collect_params().reset_ctx(mx.cpu())  # the exported model runs on whatever host serves it
    best = trained.best_ema if progress.weights == EMA else trained.best
    if progress.exported[0] is not None and best.is_file():
        net.load_parameters(str(best), ctx=mx.cpu())
    else:
        jobs.event(log, "no validation mAP: exporting the last epoch")
    meta = metadata(hp, progress, trained.data)
    meta |= trained.validator.thresholds(net)  # on the exported weights
    model.export(net, folder, meta, width=hp.data_width, height=hp.data_height)
    curves = {"epochs": progress.history} | {key: meta[key] for key in ("best_epoch", "best_val_map", "weights")}
    (folder / CURVES_FILE).write_text(json.dumps(curves, indent=2) + "\n", encoding="utf-8")
    plots.training_curves(progress.history, folder / CURVES_PICTURE)
    jobs.event(
        log, "model exported", best_epoch=meta["best_epoch"], best_val_map=meta["best_val_map"], weights=meta["weights"]
    )


def metadata(hp: hyperparameters.Hyperparameters, progress: Progress, data: Datasets) -> dict[str, Any]:
    return {
        "classes": list(hp.classes),
        "backbone": hp.backbone,
        "data_width": hp.data_width,
        "data_height": hp.data_height,
        "mean": list(model.MEAN),
        "std": list(model.STD),
        # the exported weights' best (`weights`: raw, or their moving average), and each kind's own best
        "weights": progress.weights,
        "best_epoch": progress.exported[0] or progress.epochs_done,
        "best_val_map": progress.exported[1],
        "raw_best_epoch": progress.best_epoch,
        "raw_best_val_map": progress.best_map,
        "ema_best_epoch": progress.ema_best_epoch,
        "ema_best_val_map": progress.ema_best_map,
        "epochs": hp.epochs,
        "hyperparameters": hp.to_json(),
        # what the approver sees: how much data, and how long the epochs took (resumed ones included)
        "train_images": len(data.train),
        "validation_images": len(data.validation) if data.validation is not None else 0,
        "training_seconds": round(sum(e["seconds"] + e.get("validation_seconds", 0.0) for e in progress.history), 1),
    }

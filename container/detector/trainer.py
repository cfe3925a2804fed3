"""The optimiser of a training job: SGD on a warm-up then `lr_mode` schedule, and the kvstore where the gradients
of the devices (and of the hosts, on MXNet's parameter server) meet."""

from __future__ import annotations

import math
from typing import Any

import mxnet as mx
from gluoncv.utils import LRScheduler, LRSequential
from mxnet import gluon

from detector import devices, hyperparameters, parameter_server
from detector.training_data import Datasets


def lr_schedule(hp: hyperparameters.Hyperparameters, images: int, batch_size: int) -> LRSequential:
    """Warm-up, then lr_mode, ending exactly with the last epoch: `epochs` drives the loop and the schedule alike.

    With last_batch="rollover" an epoch holds images / batch_size updates on average (17 or 18 for 140 images
    in batches of 8), so the schedule counts updates, not whole batches per epoch.
    """
    per_epoch = images / batch_size
    warmup = round(hp.warmup_epochs * per_epoch)
    total = math.ceil(hp.epochs * per_epoch)
    steps = [round(epoch * per_epoch) - warmup for epoch in hp.lr_decay_epochs if epoch > hp.warmup_epochs]
    main = LRScheduler(
        hp.lr_mode,
        base_lr=hp.learning_rate,
        niters=total - warmup,
        step_iter=steps,
        step_factor=hp.lr_decay,
        power=2,
    )
    if not warmup:
        return LRSequential([main])
    return LRSequential([LRScheduler("linear", base_lr=0, target_lr=hp.learning_rate, niters=warmup), main])


def trainable(net: Any) -> list[gluon.Parameter]:
    """The learned weights; BatchNorm's running statistics (no gradient) stay each host's own."""
    return [p for p in net.collect_params().values() if p.grad_req != "null"]


def make_trainer(
    net: Any,
    hp: hyperparameters.Hyperparameters,
    *,
    data: Datasets,
    ctx: list[mx.Context],
    session: parameter_server.Session | None,
) -> gluon.Trainer:
    """SGD over `net`'s parameters, each update the mean over the global batch (every device of every host)."""
    if session is not None:
        # gradients summed over the hosts (and their devices); every worker applies the same update itself
        store = session.kvstore("dist_device_sync" if ctx[0].device_type == "gpu" else "dist_sync")
    else:
        store = devices.kvstore(ctx)
    distributed = session is not None
    return gluon.Trainer(
        trainable(net) if distributed else net.collect_params(),
        "sgd",
        {
            "wd": hp.weight_decay,
            "momentum": hp.momentum,
            "lr_scheduler": lr_schedule(hp, data.images_per_epoch, data.batch_size * data.hosts),
        },
        kvstore=store,
        update_on_kvstore=False if distributed else None,
    )

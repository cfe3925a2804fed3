"""One training epoch: each batch split over the devices, one backward over all slices, one update; the mean of
each loss term over the epoch's updates."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import mxnet as mx
from mxnet import autograd, gluon

from detector import batches, parameter_server
from detector.averaging import WeightAverage


@dataclass(frozen=True, kw_only=True)
class Learner:
    """What an epoch trains: the network (returning `names`' losses), its trainer and devices, on `hosts` hosts;
    the average of its weights, when this host keeps one."""

    net: Any
    trainer: gluon.Trainer
    ctx: list[mx.Context]
    names: tuple[str, ...]
    hosts: int
    watchdog: parameter_server.Watchdog | None = None
    average: WeightAverage | None = None


@dataclass(frozen=True, kw_only=True)
class Epoch:
    """What one epoch did on this host."""

    means: dict[str, float]  # each loss term's mean over the updates
    seen: int  # images
    updates: int
    seconds: float
    waited: float  # of those seconds, waiting for batches
    hosts: int

    @property
    def diverged(self) -> bool:
        return any(math.isnan(value) or math.isinf(value) for value in self.means.values())

    @property
    def speed(self) -> float:
        """Images per second, over every host."""
        return self.seen * self.hosts / self.seconds if self.seconds > 0 else 0.0

    def entry(self, number: int, *, lr: float, val_map: float | None, validation_seconds: float) -> dict[str, Any]:
        """The epoch's row of the training curves (and of the checkpoint's history)."""
        entry: dict[str, Any] = {
            "epoch": number,
            **self.means,
            "lr": lr,
            "speed": self.speed,
            "val_map": val_map,
            "seconds": self.seconds,
        }
        # where the epoch went: waiting for batches (the rest of `seconds` computing), validating, checkpointing
        entry |= {"updates": self.updates, "data_seconds": self.waited, "validation_seconds": validation_seconds}
        return entry


def train_epoch(learner: Learner, loader: batches.Loader, epoch: int, *, mixup: bool) -> Epoch:
    net, ctx, count = learner.net, learner.ctx, learner.hosts
    started = time.monotonic()
    totals = {name: 0.0 for name in learner.names}
    seen = updates = 0
    for batch in loader.epoch(epoch, mixup):
        # every part of the batch split the same way over the devices: slice i of each goes to device i
        sliced = [gluon.utils.split_and_load(item, ctx, even_split=True) for item in batch]
        with autograd.record():
            outputs = [net(data, gt, *targets) for data, *targets, gt in zip(*sliced, strict=True)]
            slice_losses = [mx.nd.add_n(*parts) for parts in outputs]
        autograd.backward(slice_losses)  # one backward over all slices, then one update
        learner.trainer.step(batch[0].shape[0] * count)  # the sum of every host's gradients: the global batch's mean
        if learner.average is not None:
            learner.average.update()
        if learner.watchdog is not None:
            learner.watchdog.step()
        for index, name in enumerate(learner.names):
            totals[name] += sum(float(parts[index].mean().asscalar()) for parts in outputs) / len(outputs)
        seen += batch[0].shape[0]
        updates += 1
    seconds = time.monotonic() - started
    means = {name: value / max(updates, 1) for name, value in totals.items()}
    return Epoch(means=means, seen=seen, updates=updates, seconds=seconds, waited=loader.waited, hosts=count)

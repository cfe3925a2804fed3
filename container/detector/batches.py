"""The training batches: which records each batch of an epoch holds, each image's augmentation seed, and the
loader that makes them, in the training process or in worker processes beside it.

An epoch's batches are a function of (seed, epoch) alone. A job resumed from a checkpoint therefore makes the
batches the uninterrupted job would have made, and a worker process makes the ones the training process would:
each image is augmented from its own seed (NumPy's and Python's global random state, which GluonCV's functions
draw from), whatever process makes it and whatever came before.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import mxnet as mx
import numpy as np
from gluoncv.data.batchify import Pad, Stack, Tuple
from mxnet import gluon
from mxnet import recordio as mx_recordio

from detector import cluster, jobs, recordio
from detector.arrays import Array

WORKERS_ENV = "DETECTOR_DATA_WORKERS"
MIXUP_BETA = (1.5, 1.5)  # GluonCV's YOLOv3 recipe: the mixing ratio ~ Beta(1.5, 1.5)


@dataclass(frozen=True)
class Item:
    """One image of a batch: its record, the seed of its augmentation, and whether it is mixed with another."""

    index: int
    seed: int
    mixup: bool = False


def augmentation_seed(seed: int, *where: int) -> int:
    return int(np.random.SeedSequence([seed, *where]).generate_state(1)[0])


@dataclass(frozen=True)
class Plan:
    """The batches of every epoch for one host.

    Alone, a host runs through one permutation per epoch as a stream cut into batches: a batch belongs to the
    epoch it ends in (Gluon's `last_batch="rollover"`), so an epoch holds `images / batch_size` updates on
    average. One of several hosts takes its shard of the epoch's permutation (detector.cluster.shard) in whole
    batches, so every host makes the same number of steps.
    """

    images: int
    batch_size: int
    seed: int
    rank: int = 0
    hosts: int = 1

    def epoch(self, epoch: int, mixup: bool = False) -> list[list[Item]]:
        if self.hosts > 1:
            shard = cluster.shard(self.images, self.rank, self.hosts, seed=self.seed, epoch=epoch)
            size = self.batch_size
            return [
                [
                    Item(index, augmentation_seed(self.seed, epoch, self.rank, start + offset), mixup)
                    for offset, index in enumerate(shard[start : start + size])
                ]
                for start in range(0, len(shard) - size + 1, size)
            ]
        first, end = epoch * self.images // self.batch_size, (epoch + 1) * self.images // self.batch_size
        positions = range(first * self.batch_size, end * self.batch_size)
        orders = {
            cycle: cluster.permutation(self.images, self.seed, cycle) for cycle in {p // self.images for p in positions}
        }
        items = [
            Item(orders[p // self.images][p % self.images], augmentation_seed(self.seed, p), mixup) for p in positions
        ]
        return [items[start : start + self.batch_size] for start in range(0, len(items), self.batch_size)]


class Records:
    """A detection `.rec`'s images (RGB uint8, H x W x 3, decoded by OpenCV) and labels ((N, 5) pixel corners and
    class), as gluoncv's RecordFileDetection gives them without its NDArray decoding. MXNet's reader reopens the
    file in a forked process, so every worker reads through its own handle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._record = mx_recordio.MXIndexedRecordIO(str(path.with_suffix(".idx")), str(path), "r")
        self._keys = list(self._record.keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, index: int) -> tuple[Array, Array]:
        header, data = mx_recordio.unpack(self._record.read_idx(self._keys[index]))
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise jobs.JobError(f"{self.path.name}: record {index} is not a decodable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return image, recordio.unpack_label(header.label, image.shape[1], image.shape[0])


class Examples:
    """The training examples by Item: the record, mixed (GluonCV's MixupDetection, the same draws) when the item
    says so, then the training transform; each from the item's own seed."""

    def __init__(self, records: Records, transform: Any, mixup: bool, *, idle_workers: bool = False) -> None:
        self.records = records
        self.transform = transform
        self.mixup = mixup  # labels carry the mixing weight column: the transform was made for it
        self.idle_workers = idle_workers
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: Item) -> tuple[Array, ...]:
        if self.idle_workers and os.getpid() != self._pid:
            # a worker beside training on the same CPU cores takes only the time the training leaves idle
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            self._pid = os.getpid()
        np.random.seed(item.seed)
        random.seed(item.seed)
        image, label = self.records[item.index]
        if self.mixup:
            image, label = self._mixed(item, image, label)
        return tuple(self.transform(image, label))

    def _mixed(self, item: Item, image: Array, label: Array) -> tuple[Array, Array]:
        ratio = max(0.0, min(1.0, float(np.random.beta(*MIXUP_BETA)))) if item.mixup else 1.0
        if ratio >= 1:
            return image, np.hstack((label, np.ones((label.shape[0], 1))))
        other = int(np.random.choice(np.delete(np.arange(len(self.records)), item.index)))
        image2, label2 = self.records[other]
        height, width = max(image.shape[0], image2.shape[0]), max(image.shape[1], image2.shape[1])
        mixed = np.zeros((height, width, 3), np.float32)
        mixed[: image.shape[0], : image.shape[1]] = image.astype(np.float32) * np.float32(ratio)
        mixed[: image2.shape[0], : image2.shape[1]] += image2.astype(np.float32) * np.float32(1.0 - ratio)
        weights = np.vstack((np.full((label.shape[0], 1), ratio), np.full((label2.shape[0], 1), 1.0 - ratio)))
        return mixed.astype(np.uint8), np.hstack((np.vstack((label, label2)), weights))


class _Epoch:
    """The batch sampler Gluon's DataLoader iterates: the current epoch's batches."""

    def __init__(self) -> None:
        self.batches: list[list[Item]] = []

    def __iter__(self) -> Iterator[list[Item]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def batchify() -> Tuple:
    """Image and five targets stacked, boxes padded with -1 to the batch's most."""
    return Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1)]))


def workers(devices: list[mx.Context]) -> tuple[int, bool]:
    """(worker processes, at idle priority): beside GPUs, every core but the training process's, up to four per
    GPU; on the CPU, where the training uses every core, one worker that takes only the time it leaves idle.
    `DETECTOR_DATA_WORKERS=N` chooses N instead (0: every batch made in the training process)."""
    cores = os.cpu_count() or 1
    chosen = os.environ.get(WORKERS_ENV)
    if chosen:
        count = int(chosen)
        return count, count > 0 and devices[0].device_type == "cpu"
    if devices[0].device_type == "gpu":
        return max(0, min(cores - 1, 4 * len(devices))), False
    return (1, True) if cores > 1 else (0, False)


class Loader:
    """The batches of `plan`, epoch by epoch, made by `workers` processes (0: in this process), the same either way.
    Make it before MXNet's distributed store: the workers are forked at once."""

    def __init__(self, examples: Examples, plan: Plan, workers: int) -> None:
        self.plan = plan
        self.waited = 0.0
        self._epoch = _Epoch()
        self._loader = gluon.data.DataLoader(
            examples, batch_sampler=self._epoch, batchify_fn=batchify(), num_workers=workers, prefetch=2 * workers
        )

    def epoch(self, epoch: int, mixup: bool = False) -> Iterator[list[mx.nd.NDArray]]:
        """The epoch's batches; `waited` counts the seconds the caller spent waiting for them."""
        self._epoch.batches = self.plan.epoch(epoch, mixup)
        self.waited = 0.0
        batches = iter(self._loader)
        while True:
            asked = time.monotonic()
            batch = next(batches, None)
            self.waited += time.monotonic() - asked
            if batch is None:
                return
            yield batch

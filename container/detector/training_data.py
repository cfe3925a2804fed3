"""A training job's data: the train and validation sets, this host's batch size, and the loaders of both."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mxnet as mx
from gluoncv.data.batchify import Pad, Stack, Tuple
from mxnet import gluon

from detector import batches, cluster, devices, hyperparameters, jobs, model, transforms

log = logging.getLogger("detector.train")


@dataclass(frozen=True)
class Loaders:
    train: batches.Loader
    validation: gluon.data.DataLoader | None  # on the writer, when the job has a validation split


@dataclass(frozen=True, kw_only=True)
class Datasets:
    train: batches.Records
    validation: Any | None  # a RecordFileDetection
    batch_size: int  # this host's
    shard_size: int  # the images each host trains on per epoch
    hosts: int

    @classmethod
    def open(
        cls, train: Path, validation: Path | None, *, hosts: cluster.Cluster, batch_size: int, devices_count: int
    ) -> Datasets:
        """The sets, and this host's share of the global `batch_size`, shrunk to the data (in whole slices over
        its `devices_count` devices) when the data is smaller."""
        count = len(hosts.hosts)
        train_set = batches.Records(train)
        if len(train_set) == 0:
            raise jobs.JobError(f"train channel: {train.name} holds no images")
        # the writer alone validates, logs the epoch line, checkpoints and exports
        val_set = model.records(validation) if validation and hosts.writer else None
        if val_set is not None and len(val_set) == 0:
            val_set = None
        shard_size = len(train_set) // count
        wanted = cluster.per_host_batch(batch_size, count)
        host_batch = devices.host_batch(wanted, shard_size or 1, devices_count)
        if host_batch < wanted:
            jobs.event(log, "batch size reduced to the dataset size", batch_size=host_batch, images=len(train_set))
        return cls(train=train_set, validation=val_set, batch_size=host_batch, shard_size=shard_size, hosts=count)

    @property
    def images_per_epoch(self) -> int:
        """The images one epoch's updates see, over every host: the schedule counts its updates from them."""
        if self.hosts > 1:
            # every host the same whole batches per epoch (the rest of its shard is left out)
            return self.shard_size // self.batch_size * self.batch_size * self.hosts
        return len(self.train)

    def loaders(
        self,
        transform: transforms.TrainTransform,
        hp: hyperparameters.Hyperparameters,
        *,
        rank: int,
        ctx: list[mx.Context],
    ) -> Loaders:
        """The training batches of this host (detector.batches; its worker processes are forked here, before
        MXNet's distributed store exists) and the validation batches, resized and normalised."""
        worker_count, idle = batches.workers(ctx)
        plan = batches.Plan(len(self.train), self.batch_size, hp.seed, rank, self.hosts)
        examples = batches.Examples(self.train, transform, hp.mixup, idle_workers=idle)
        train_loader = batches.Loader(examples, plan, worker_count)
        jobs.event(log, "data workers", processes=worker_count, idle_priority=idle)
        if self.validation is None:
            return Loaders(train_loader, None)
        val_loader = gluon.data.DataLoader(
            self.validation.transform(transforms.val_transform(hp.data_width, hp.data_height)),
            self.batch_size,
            shuffle=False,
            batchify_fn=Tuple(Stack(), Pad(pad_val=-1)),
            last_batch="keep",
            num_workers=0,
        )
        return Loaders(train_loader, val_loader)

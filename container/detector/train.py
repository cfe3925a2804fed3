"""Training job: GluonCV YOLOv3 on the `train` channel, the best epoch by validation mAP exported.

The image's `train` command runs this (SageMaker's bring-your-own-container contract). It reads
`/opt/ml/input/config/hyperparameters.json` and the `train` and `validation` channels (one `.rec` each; an
optional `pretrained` channel with a `.params` file starts from those weights), logs one line per epoch for the
metric regexes, checkpoints to `/opt/ml/checkpoints` every epoch and resumes from there, and writes to
`/opt/ml/model`: `model-symbol.json`, `model-0000.params`, `model-meta.json`, `training_curves.{json,png}`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from detector import jobs, paths

jobs.cpu_threads()  # before mxnet is imported

import mxnet as mx  # noqa: E402
from gluoncv.data.batchify import Pad, Stack, Tuple  # noqa: E402
from gluoncv.utils import LRScheduler, LRSequential  # noqa: E402
from gluoncv.utils import random as gcv_random  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from detector import (  # noqa: E402
    batches,
    cluster,
    devices,
    hyperparameters,
    losses,
    model,
    parameter_server,
    plots,
    thresholds,
    transforms,
    validation,
)
from detector.checkpoints import Checkpoints, Progress, fingerprint  # noqa: E402

log = logging.getLogger("detector.train")

# Tests stand in for a spot interruption with this: the job ends after that epoch, checkpoints written.
STOP_ENV = "DETECTOR_STOP_AFTER_EPOCHS"
LOSSES = ("obj_loss", "center_loss", "scale_loss", "cls_loss")
BOX_LOSS = "box_loss"  # the GIoU term, logged after GluonCV's four when giou_loss_weight is above 0
TIMES = ("seconds", "data_seconds", "validation_seconds", "checkpoint_seconds")


@dataclass(frozen=True)
class Locations:
    train: Path
    validation: Path | None
    pretrained: Path | None
    model: Path
    checkpoints: Path


def epoch_line(epoch: int, losses: dict[str, float], lr: float, speed: float, val_map: float | None) -> str:
    """The per-epoch line that pipeline_def.metrics' regexes read."""
    parts = [f"epoch={epoch}", *(f"{name}={value:.4f}" for name, value in losses.items())]
    parts += [f"lr={lr:.6g}", f"speed={speed:.2f}"]
    if val_map is not None:
        parts.append(f"val_map={val_map:.4f}")
    return " ".join(parts)


def locate() -> Locations:
    train = model.find_rec(paths.channel("train"), "train channel")
    if train is None:
        raise jobs.JobError(f"train channel: no .rec file in {paths.channel('train')}")
    pretrained_dir = paths.channel("pretrained")
    pretrained = sorted(pretrained_dir.rglob("*.params")) if pretrained_dir.is_dir() else []
    return Locations(
        train=train,
        validation=model.find_rec(paths.channel("validation"), "validation channel"),
        pretrained=pretrained[0] if pretrained else None,
        model=paths.model_dir(),
        checkpoints=paths.checkpoint_dir(),
    )


def is_better(val_map: float | None, best_map: float | None) -> bool:
    """Whether this epoch becomes the exported one. Ties go to the later epoch, so a run whose mAP never
    rises above zero still exports its longest-trained weights rather than nothing."""
    return val_map is not None and (best_map is None or val_map >= best_map)


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


def train(hp: hyperparameters.Hyperparameters, where: Locations) -> Progress:
    """One host's part: alone, or as a worker of MXNet's parameter server when the job has several hosts."""
    hosts = cluster.Cluster.load()
    if not hosts.distributed:
        return _train(hp, where, hosts, None)
    with parameter_server.started(hosts) as session:
        return _train(hp, where, hosts, session)


def _train(
    hp: hyperparameters.Hyperparameters,
    where: Locations,
    hosts: cluster.Cluster,
    session: parameter_server.Session | None,
) -> Progress:
    gcv_random.seed(hp.seed)
    ctx = devices.contexts()
    count = len(hosts.hosts)
    train_set = batches.Records(where.train)
    if len(train_set) == 0:
        raise jobs.JobError(f"train channel: {where.train.name} holds no images")
    # the writer alone validates, logs the epoch line, checkpoints and exports
    val_set = model.records(where.validation) if where.validation and hosts.writer else None
    if val_set is not None and len(val_set) == 0:
        val_set = None
    shard_size = len(train_set) // count
    wanted = cluster.per_host_batch(hp.batch_size, count)
    batch_size = devices.host_batch(wanted, shard_size or 1, len(ctx))
    if batch_size < wanted:
        jobs.event(log, "batch size reduced to the dataset size", batch_size=batch_size, images=len(train_set))
    jobs.event(log, "devices", contexts=",".join(str(c) for c in ctx), batch_size=batch_size)
    width, height = hp.data_width, hp.data_height

    net = model.build(hp.backbone, hp.classes)
    if where.pretrained:
        net.load_parameters(str(where.pretrained), allow_missing=True, ignore_extra=True)
        jobs.event(log, "starting from pretrained weights", file=where.pretrained.name)
    model.set_training_targets(net, hp.ignore_iou, hp.label_smoothing)
    # the transform copies the network for its anchors: made before the parameters move to the devices
    transform = transforms.TrainTransform(
        width, height, net, mixup=hp.mixup, random_expand=hp.random_expand, match_iou=hp.anchor_match_iou
    )
    names: tuple[str, ...] = LOSSES
    if hp.giou_loss_weight > 0:
        losses.install(net, *transform.slots(), hp.giou_loss_weight)
        names = (*LOSSES, BOX_LOSS)
    worker_count, idle = batches.workers(ctx)
    plan = batches.Plan(len(train_set), batch_size, hp.seed, hosts.rank, count)
    # worker processes are forked here, before MXNet's distributed store exists
    train_loader = batches.Loader(batches.Examples(train_set, transform, hp.mixup, idle), plan, worker_count)
    jobs.event(log, "data workers", processes=worker_count, idle_priority=idle)
    net.collect_params().reset_ctx(ctx)
    if session is not None:
        with autograd.predict_mode():  # every parameter's shape known, so the first host's values reach all
            net(mx.nd.zeros((1, 3, height, width), ctx=ctx[0]))
        # An inference forward leaves convolution weights in oneDNN's own layout, which the kvstore's push
        # cannot read: the push fails inside MXNet's engine without a word, the first host's initial values
        # never reach the servers and a peer's pull aborts them ("init N first"). reset_ctx copies every
        # parameter into new arrays (assigning into the old ones would keep their layout).
        net.collect_params().reset_ctx(ctx)
    val_loader = None
    if val_set is not None:
        val_loader = gluon.data.DataLoader(
            val_set.transform(transforms.val_transform(width, height)),
            batch_size,
            shuffle=False,
            batchify_fn=Tuple(Stack(), Pad(pad_val=-1)),
            last_batch="keep",
            num_workers=0,
        )
    if session is not None:
        # gradients summed over the hosts (and their devices); every worker applies the same update itself
        store = session.kvstore("dist_device_sync" if ctx[0].device_type == "gpu" else "dist_sync")
        # every host the same whole batches per epoch (the rest of its shard is left out)
        images_per_epoch = shard_size // batch_size * batch_size * count
    else:
        store = devices.kvstore(ctx)
        images_per_epoch = len(train_set)
    # the learned weights; BatchNorm's running statistics (no gradient) stay each host's own
    trainable = [p for p in net.collect_params().values() if p.grad_req != "null"]
    trainer = gluon.Trainer(
        trainable if hosts.distributed else net.collect_params(),
        "sgd",
        {
            "wd": hp.weight_decay,
            "momentum": hp.momentum,
            "lr_scheduler": lr_schedule(hp, images_per_epoch, batch_size * count),
        },
        kvstore=store,
        update_on_kvstore=False if hosts.distributed else None,
    )
    # validation's own graph on the same parameters, made before the training graph (detector.validation)
    inference = validation.inference_graph(net) if val_loader is not None else None
    checkpoints = Checkpoints(where.checkpoints, fingerprint(hp, where.train))
    progress = checkpoints.restore(net, trainer, ctx)
    watchdog = session.watchdog if session is not None else None
    if session is not None:
        # MXNet's rank 0's weights (restored or new; the same seed and checkpoints give every host the same) to
        # every host before the first step: otherwise a worker may race the initial broadcast and keep other
        # weights for good (restoring has broadcast them already)
        if not trainer._kv_initialized:
            trainer._init_kvstore()
        if trainer._params_to_init:
            trainer._init_params()
        mx.nd.waitall()
        session.agree_on_start(progress.epochs_done)

    stop_after = int(os.environ.get(STOP_ENV, "0"))
    net.hybridize(static_alloc=True, static_shape=True)  # the training graph, built once
    for epoch in range(progress.epochs_done, hp.epochs):
        use_mixup = hp.mixup and epoch < hp.epochs - hp.no_mixup_epochs
        started = time.monotonic()
        totals = {name: 0.0 for name in names}
        seen = updates = 0
        for batch in train_loader.epoch(epoch, use_mixup):
            # every part of the batch split the same way over the devices: slice i of each goes to device i
            sliced = [gluon.utils.split_and_load(item, ctx, even_split=True) for item in batch]
            with autograd.record():
                outputs = [net(data, gt, *targets) for data, *targets, gt in zip(*sliced, strict=True)]
                slice_losses = [mx.nd.add_n(*parts) for parts in outputs]
            autograd.backward(slice_losses)  # one backward over all slices, then one update
            trainer.step(batch[0].shape[0] * count)  # the sum of every host's gradients: the global batch's mean
            if watchdog is not None:
                watchdog.step()
            for index, name in enumerate(names):
                totals[name] += sum(float(parts[index].mean().asscalar()) for parts in outputs) / len(outputs)
            seen += batch[0].shape[0]
            updates += 1
        seconds = time.monotonic() - started
        means = {name: value / max(updates, 1) for name, value in totals.items()}
        diverged = any(math.isnan(value) or math.isinf(value) for value in means.values())
        if session is not None:
            diverged = session.any(diverged)  # the same decision on every host
        if diverged:
            raise parameter_server.AllHosts(
                f"training diverged at epoch {epoch + 1} (loss is not finite); lower learning_rate"
            )
        number = epoch + 1
        validating = number % hp.val_interval == 0 or number == hp.epochs
        validated = time.monotonic()
        val_map = None
        if validating and val_loader is not None and inference is not None:
            val_map = validation.validate(inference, val_loader, hp.classes, ctx[0])
        validation_seconds = time.monotonic() - validated
        improved = is_better(val_map, progress.best_map)
        if improved:
            progress.best_map, progress.best_epoch = val_map, number
        lr = trainer.learning_rate
        speed = seen * count / seconds if seconds > 0 else 0.0
        entry = {"epoch": number, **means, "lr": lr, "speed": speed, "val_map": val_map, "seconds": seconds}
        # where the epoch went: waiting for batches (the rest of `seconds` computing), validating, checkpointing
        entry |= {"updates": updates, "data_seconds": train_loader.waited, "validation_seconds": validation_seconds}
        progress.history.append(entry)
        progress.epochs_done = number
        if hosts.writer:
            print(epoch_line(number, means, lr, speed, val_map), flush=True)
            saved = time.monotonic()
            checkpoints.save(net, trainer, progress, improved)
            entry["checkpoint_seconds"] = time.monotonic() - saved
            jobs.event(log, "epoch time", **{k: round(entry[k], 3) for k in TIMES}, epoch=number)
        if number == stop_after:
            raise parameter_server.AllHosts(f"stopped after epoch {number} ({STOP_ENV})")
    if session is not None:
        # every host's copy of the learned weights, to show that they are one model
        total = sum(float(p.data(ctx[0]).astype("float64").sum().asscalar()) for p in trainable)
        jobs.event(log, "parameters", host=hosts.current_host, checksum=f"{total:.6f}")
        if not hosts.writer:
            return progress

    net.collect_params().reset_ctx(mx.cpu())  # the exported model runs on whatever host serves it
    if progress.best_epoch is not None and checkpoints.best.is_file():
        net.load_parameters(str(checkpoints.best), ctx=mx.cpu())
    else:
        jobs.event(log, "no validation mAP: exporting the last epoch")
    meta = {
        "classes": list(hp.classes),
        "backbone": hp.backbone,
        "data_width": width,
        "data_height": height,
        "mean": list(model.MEAN),
        "std": list(model.STD),
        "best_epoch": progress.best_epoch or progress.epochs_done,
        "best_val_map": progress.best_map,
        "epochs": hp.epochs,
        "hyperparameters": hp.to_json(),
        # what the approver sees: how much data, and how long the epochs took (resumed ones included)
        "train_images": len(train_set),
        "validation_images": len(val_set) if val_set is not None else 0,
        "training_seconds": round(sum(e["seconds"] + e.get("validation_seconds", 0.0) for e in progress.history), 1),
    }
    if val_loader is not None:
        # the score threshold that fits this model: the best F1 at IoU 0.5 on the validation split
        chosen = thresholds.choose(validation.validation_detections(inference, val_loader, mx.cpu()), len(hp.classes))
        if chosen is not None:
            meta["score_threshold"] = round(chosen.threshold, 6)
            meta["validation_f1"] = {
                "f1": round(chosen.f1, 6), "precision": round(chosen.precision, 6), "recall": round(chosen.recall, 6)
            }  # fmt: skip
            jobs.event(log, "score threshold chosen", threshold=meta["score_threshold"], f1=round(chosen.f1, 4))
    model.export(net, where.model, width, height, meta)
    curves = {"epochs": progress.history, "best_epoch": meta["best_epoch"], "best_val_map": progress.best_map}
    (where.model / "training_curves.json").write_text(json.dumps(curves, indent=2) + "\n", encoding="utf-8")
    plots.training_curves(progress.history, where.model / "training_curves.png")
    jobs.event(log, "model exported", best_epoch=meta["best_epoch"], best_val_map=progress.best_map)
    return progress


def main() -> None:
    jobs.run(lambda: train(hyperparameters.load(paths.hyperparameters_file()), locate()), paths.failure_file)


if __name__ == "__main__":
    main()

"""Training job: GluonCV YOLOv3 on the `train` channel, the best epoch by validation mAP exported (of the raw
weights, or of their moving average when the job keeps one and it validates better).

The image's `train` command runs this (SageMaker's bring-your-own-container contract). It reads
`/opt/ml/input/config/hyperparameters.json` and the `train` and `validation` channels (one `.rec` each; an
optional `pretrained` channel with a `.params` file starts from those weights), logs one line per epoch for the
metric regexes, checkpoints to `/opt/ml/checkpoints` every epoch and resumes from there, and writes to
`/opt/ml/model`: `model-symbol.json`, `model-0000.params`, `model-meta.json`, `training_curves.{json,png}`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector import jobs, paths

if __name__ == "__main__":  # --help answers, and an argument is refused, before MXNet loads
    jobs.no_arguments("python3 -m detector.train", __doc__)
jobs.cpu_threads()  # before mxnet is imported

from gluoncv.utils import random as gcv_random  # noqa: E402

from detector import cluster, devices, hyperparameters, losses, model, parameter_server, transforms  # noqa: E402
from detector.agreement import Agreement  # noqa: E402
from detector.averaging import WeightAverage  # noqa: E402
from detector.checkpoints import Checkpoints, Progress, fingerprint  # noqa: E402
from detector.epoch import Learner, train_epoch  # noqa: E402
from detector.export import Trained, write_model  # noqa: E402
from detector.trainer import make_trainer  # noqa: E402
from detector.training_data import Datasets  # noqa: E402
from detector.validation import Validator  # noqa: E402

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


def epoch_line(
    epoch: int,
    losses: dict[str, float],
    *,
    lr: float,
    speed: float,
    val_map: float | None,
    ema_val_map: float | None = None,
) -> str:
    """The per-epoch line that pipeline_def.metrics' regexes read (`ema_val_map`: the weight average's mAP)."""
    parts = [f"epoch={epoch}", *(f"{name}={value:.4f}" for name, value in losses.items())]
    parts += [f"lr={lr:.6g}", f"speed={speed:.2f}"]
    if val_map is not None:
        parts.append(f"val_map={val_map:.4f}")
    if ema_val_map is not None:
        parts.append(f"ema_val_map={ema_val_map:.4f}")
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


def train(hp: hyperparameters.Hyperparameters, where: Locations) -> Progress:
    """One host's part: alone, or as a worker of MXNet's parameter server when the job has several hosts."""
    hosts = cluster.Cluster.load()
    if not hosts.distributed:
        return _train(hp, where, Agreement(hosts, None))
    hosts = hosts.resolved()  # every peer's name, however late it comes, before the parameter server needs it
    with parameter_server.started(hosts) as session:
        return _train(hp, where, Agreement(hosts, session))


def _train(hp: hyperparameters.Hyperparameters, where: Locations, together: Agreement) -> Progress:
    """The steps of the job in the one order that keeps it reproducible: the random draws (initial weights,
    augmentation, batches) and every host's steps come in it, so the same seed gives the same weights."""
    gcv_random.seed(hp.seed)
    ctx = devices.contexts()
    hosts = together.hosts
    data = Datasets.open(where.train, where.validation, hosts=hosts, batch_size=hp.batch_size, devices_count=len(ctx))
    jobs.event(log, "devices", contexts=",".join(str(c) for c in ctx), batch_size=data.batch_size)
    net, transform, names = _network(hp, where.pretrained)
    loaders = data.loaders(transform, hp, rank=hosts.rank, ctx=ctx)  # forks the data workers: before any kvstore
    net.collect_params().reset_ctx(ctx)
    together.infer_shapes(net, ctx, (hp.data_height, hp.data_width))
    sgd = make_trainer(net, hp, data=data, ctx=ctx, session=together.session)
    validator = Validator.make(net, loaders.validation, hp, ctx=ctx[0])  # its graph before the training graph
    # the writer alone validates, checkpoints and exports: it alone averages, the copy validation reads
    average = WeightAverage(net, hp.ema_decay, ctx[0]) if hp.ema_decay > 0 and hosts.writer else None
    checkpoints = Checkpoints(where.checkpoints, fingerprint(hp, where.train))
    progress = checkpoints.restore(net, sgd, ctx, average=average)
    together.start(sgd, progress.epochs_done)
    learner = Learner(
        net=net, trainer=sgd, ctx=ctx, names=names, hosts=data.hosts, watchdog=together.watchdog, average=average
    )

    stop_after = int(os.environ.get(STOP_ENV, "0"))
    net.hybridize(static_alloc=True, static_shape=True)  # the training graph, built once
    for epoch in range(progress.epochs_done, hp.epochs):
        use_mixup = hp.mixup and epoch < hp.epochs - hp.no_mixup_epochs
        done = train_epoch(learner, loaders.train, epoch, mixup=use_mixup)
        if together.diverged(done.diverged):
            raise parameter_server.AllHosts(
                f"training diverged at epoch {epoch + 1} (loss is not finite); lower learning_rate"
            )
        number = epoch + 1
        val_map, ema_map, validation_seconds = _validate(validator, average, number)
        entry = done.entry(number, lr=sgd.learning_rate, val_map=val_map, validation_seconds=validation_seconds)
        if average is not None:
            entry["ema_val_map"] = ema_map
        improved = progress.record(entry)
        if hosts.writer:
            line = epoch_line(
                number, done.means, lr=entry["lr"], speed=done.speed, val_map=val_map, ema_val_map=ema_map
            )
            print(line, flush=True)
            _checkpoint(checkpoints, learner, progress, improved=improved)
        if number == stop_after:
            raise parameter_server.AllHosts(f"stopped after epoch {number} ({STOP_ENV})")
    together.show_one_model(net, ctx)
    if hosts.writer:
        trained = Trained(
            net=net, progress=progress, best=checkpoints.best, best_ema=checkpoints.best_average, data=data,
            validator=validator,
        )  # fmt: skip
        write_model(trained, hp, where.model)
    return progress


def _network(
    hp: hyperparameters.Hyperparameters, pretrained: Path | None
) -> tuple[Any, transforms.TrainTransform, tuple[str, ...]]:
    """The network (new, or from pretrained weights) with its training targets and loss, the training transform
    made for it, and the names of the loss terms it returns."""
    net = model.build(hp.backbone, hp.classes)
    if pretrained:
        net.load_parameters(str(pretrained), allow_missing=True, ignore_extra=True)
        jobs.event(log, "starting from pretrained weights", file=pretrained.name)
    model.set_training_targets(net, hp.ignore_iou, hp.label_smoothing)
    # the transform copies the network for its anchors: made before the parameters move to the devices
    transform = transforms.TrainTransform(
        hp.data_width,
        hp.data_height,
        net,
        mixup=hp.mixup,
        random_expand=hp.random_expand,
        match_iou=hp.anchor_match_iou,
    )
    names: tuple[str, ...] = LOSSES
    if hp.giou_loss_weight > 0:
        losses.install(net, *transform.slots(), weight=hp.giou_loss_weight)
        names = (*LOSSES, BOX_LOSS)
    return net, transform, names


def _validate(
    validator: Validator, average: WeightAverage | None, number: int
) -> tuple[float | None, float | None, float]:
    """The mAP@0.5 after epoch `number` of the raw weights and of their average (None when the epoch does not
    validate, or the job does not average), and the seconds both took."""
    val_map, seconds = validator.after_epoch(number)
    if average is None or val_map is None:
        return val_map, None, seconds
    with average.in_place():
        ema_map, more = validator.after_epoch(number)
    return val_map, ema_map, seconds + more


def _checkpoint(checkpoints: Checkpoints, learner: Learner, progress: Progress, *, improved: tuple[str, ...]) -> None:
    """The epoch's checkpoint, and where the epoch's time went."""
    entry = progress.history[-1]
    saved = time.monotonic()
    checkpoints.save(learner.net, learner.trainer, progress, improved=improved, average=learner.average)
    entry["checkpoint_seconds"] = time.monotonic() - saved
    jobs.event(log, "epoch time", **{k: round(entry[k], 3) for k in TIMES}, epoch=entry["epoch"])


def main() -> None:
    jobs.run(lambda: train(hyperparameters.load(paths.hyperparameters_file()), locate()), paths.failure_file)


if __name__ == "__main__":
    main()

"""Baseline: GluonCV's reference YOLOv3 training loop (the structure of scripts/detection/yolo/train_yolo3.py).

Fixed data shape (its --no-random-shape), its defaults otherwise: 4 DataLoader workers, `net.hybridize()`,
split_and_load, one autograd.backward over the per-device losses, mx.metric.Loss updates per batch. Prints
`images_per_second=<n>` over the batches after the first `--warmup` ones.

    python -m bench.container.baselines.reference_yolo3 TRAIN.rec --backbone mobilenet1.0 \
        --width 480 --height 320 --batch-size 8
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import mxnet as mx
from gluoncv import model_zoo
from gluoncv.data import RecordFileDetection
from gluoncv.data.batchify import Pad, Stack, Tuple
from gluoncv.data.transforms.presets.yolo import YOLO3DefaultTrainTransform
from mxnet import autograd, gluon


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rec")
    parser.add_argument("--backbone", default="mobilenet1.0")
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=4)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    ctx = [mx.cpu()]
    net = model_zoo.get_model(f"yolo3_{args.backbone}_custom", classes=["scratch"], pretrained_base=False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        net.initialize()
    dataset = RecordFileDetection(args.rec)
    batchify_fn = Tuple(*([Stack() for _ in range(6)] + [Pad(axis=0, pad_val=-1) for _ in range(1)]))
    train_data = gluon.data.DataLoader(
        dataset.transform(YOLO3DefaultTrainTransform(args.width, args.height, net)),
        args.batch_size,
        True,
        batchify_fn=batchify_fn,
        last_batch="rollover",
        num_workers=args.num_workers,
    )
    trainer = gluon.Trainer(
        net.collect_params(), "sgd", {"wd": 0.0005, "momentum": 0.9, "learning_rate": 0.001}, kvstore="local"
    )
    metrics = [mx.metric.Loss(name) for name in ("ObjLoss", "BoxCenterLoss", "BoxScaleLoss", "ClassLoss")]
    seen, started, done = 0, 0.0, 0
    mx.nd.waitall()
    net.hybridize()
    while done < args.batches + args.warmup:
        for batch in train_data:
            if done == args.warmup:
                mx.nd.waitall()
                started, seen = time.monotonic(), 0
            batch_size = batch[0].shape[0]
            data = gluon.utils.split_and_load(batch[0], ctx_list=ctx, batch_axis=0)
            fixed_targets = [gluon.utils.split_and_load(batch[it], ctx_list=ctx, batch_axis=0) for it in range(1, 6)]
            gt_boxes = gluon.utils.split_and_load(batch[6], ctx_list=ctx, batch_axis=0)
            sum_losses: list[Any] = []
            parts: list[list[Any]] = [[], [], [], []]
            with autograd.record():
                for ix, x in enumerate(data):
                    losses = net(x, gt_boxes[ix], *[ft[ix] for ft in fixed_targets])
                    sum_losses.append(losses[0] + losses[1] + losses[2] + losses[3])
                    for part, loss in zip(parts, losses, strict=True):
                        part.append(loss)
                autograd.backward(sum_losses)
            trainer.step(batch_size)
            for metric, part in zip(metrics, parts, strict=True):
                metric.update(0, part)
            seen += batch_size
            done += 1
            if done >= args.batches + args.warmup:
                break
    mx.nd.waitall()
    print(f"images_per_second={seen / (time.monotonic() - started):.3f}", flush=True)


if __name__ == "__main__":
    main()

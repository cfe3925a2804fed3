"""The quality figure: train on a real dataset through preprocess, train and evaluate; print the test mAP@0.5.

    make bench-quality [DATASET=../shared/datasets/metal-tags]

The default recipe is the best found from scratch within 30 minutes of a 2-core CPU (no pretrained weights are
reachable offline): optional pre-training on detector.synth images, then the real data.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.container import jobs

WORK = jobs.REPO / "work" / "quality"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.container.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=jobs.REPO.parent / "shared" / "datasets" / "metal-tags")
    parser.add_argument("--backbone", default="mobilenet0.25")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", default="0.002")
    parser.add_argument("--warmup-epochs", type=int, default=2)
    parser.add_argument("--lr-mode", default="cosine")
    parser.add_argument("--random-expand", default="false")
    parser.add_argument("--mixup", default="false")
    parser.add_argument("--pretrain-images", type=int, default=0, help="synthetic images to pre-train on (0: none)")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    labels = args.dataset / "labels.csv"
    if not labels.is_file():
        parser.error(f"{labels} not found: pass --dataset (a folder with labels.csv and images)")

    started = time.monotonic()
    hyperparameters = {
        "backbone": args.backbone,
        "epochs": str(args.epochs),
        "batch_size": str(args.batch_size),
        "learning_rate": args.learning_rate,
        "warmup_epochs": str(args.warmup_epochs),
        "lr_mode": args.lr_mode,
        "data_width": str(args.width),
        "data_height": str(args.height),
        "random_expand": args.random_expand,
        "mixup": args.mixup,
        "seed": str(args.seed),
    }
    pretrained = None
    if args.pretrain_images:
        synth = WORK / "synth-data"
        if not (synth / "labels.csv").is_file():
            jobs.run_module("detector.synth", ["--output", str(synth), "--count", str(args.pretrain_images)], WORK)
        jobs.offline_store_from_csv(synth / "labels.csv", WORK / "synth-store")
        jobs.preprocess(WORK / "synth-pre", WORK / "synth-store", synth, (0.9, 0.1, 0.0))
        pre_hp = {**hyperparameters, "epochs": str(args.pretrain_epochs), "warmup_epochs": "1"}
        jobs.train(WORK / "synth-train", WORK / "synth-pre", pre_hp)
        pretrained = WORK / "synth-train" / "checkpoints" / "best.params"
        jobs.say(f"pre-trained on {args.pretrain_images} synthetic images in {time.monotonic() - started:.0f} s")

    store = WORK / "store"
    if store.exists():
        import shutil

        shutil.rmtree(store)
    jobs.offline_store_from_csv(labels, store)
    report = jobs.preprocess(WORK / "pre", store, args.dataset, (0.7, 0.15, 0.15))
    model = jobs.train(WORK / "train", WORK / "pre", hyperparameters, pretrained)
    evaluation = jobs.evaluate(WORK / "evaluate", model, WORK / "pre")
    minutes = (time.monotonic() - started) / 60
    print(f"dataset: {args.dataset} splits: " + ", ".join(f"{k}={v['images']}" for k, v in report["splits"].items()))
    print(f"recipe: {hyperparameters} pretrain_images={args.pretrain_images} pretrain_epochs={args.pretrain_epochs}")
    print(f"best validation mAP {evaluation['model']['best_val_map']} at epoch {evaluation['model']['best_epoch']}")
    print(f"test mAP@0.5: {evaluation['metrics']['map']['value']:.4f}  wall time: {minutes:.1f} min")
    print(f"artefacts: {WORK}")


if __name__ == "__main__":
    main()

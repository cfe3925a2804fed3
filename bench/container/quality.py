"""The quality figure: train on a real dataset through preprocess, train and evaluate; print the test mAP@0.5.

    make bench-quality [DATASET=../shared/datasets/metal-tags] [BASELINE=a57626d|none]

First the baseline: the recipe and the code of git revision BASELINE (default: the tree issue 15 started from;
20.4 to 26.9 minutes on 2 cores), extracted with `git archive` and run by its own bench-quality on the same
dataset and container/.venv; then this tree's recipe. It prints both test mAPs, both wall times and their ratio.
The recipe is config/pipeline.yaml's (flags override it), the best found from scratch on a 2-core CPU (no
pretrained weights are reachable offline); optionally pre-trained on detector.synth images first.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import yaml

from bench.container import jobs
from pipeline_def.job_text import job_text

WORK = jobs.REPO / "work" / "quality"
CONFIG = jobs.REPO / "config" / "pipeline.yaml"  # its training recipe is the default: what a deployment trains
BASELINE = "a57626d"  # issue 15's starting point: 100 epochs at 320x224, GluonCV's data pipeline
RESULT = re.compile(r"test mAP@0\.5: (?P<map>[0-9.]+)")


def baseline(revision: str, dataset: Path) -> tuple[float, float]:
    """(test mAP, wall seconds) of `revision`'s own bench-quality on `dataset`, run from an extracted copy."""
    tree = WORK / "baseline" / revision
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(jobs.REPO), "archive", revision],  # the whole tree (1.7 MB): what its bench imports
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as members:
        members.extractall(tree, filter="data")
    (tree / "container" / ".venv").symlink_to(jobs.CONTAINER / ".venv")  # the same packages
    jobs.say(f"baseline: {revision}'s recipe and code in {tree}")
    started = time.monotonic()
    lines = []
    with subprocess.Popen(
        [str(jobs.CONTAINER_PYTHON), "-m", "bench.container.quality", "--dataset", str(dataset.resolve())],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:  # its epoch lines shown as they come, its summary kept
            jobs.say(f"  baseline | {line.rstrip()}")
            lines.append(line)
    seconds = time.monotonic() - started
    found = RESULT.search("".join(lines))
    if process.returncode or found is None:
        raise RuntimeError(f"the baseline {revision} failed (exit code {process.returncode}): {''.join(lines[-20:])}")
    return float(found["map"]), seconds


def _recipe_flags(parser: argparse.ArgumentParser) -> list[str]:
    """One flag per hyperparameter, from the image's declaration of them; the default is the config's recipe
    (config/pipeline.yaml's training.hyperparameters over the declared defaults). Returns the knobs' names."""
    from detector.hyperparameters import declared  # importable once bench.container.jobs put it on the path

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["training"].get("hyperparameters") or {}
    knobs = [name for name in declared() if name != "classes"]  # the dataset's classes, as the pipeline passes
    for name in knobs:
        rule = declared()[name]
        default = config.get(name, rule["default"])
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=job_text(default) if name in config else None,
            help=f"{rule['description']} (default: {job_text(default)})",
        )
    return knobs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.container.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=jobs.REPO.parent / "shared" / "datasets" / "metal-tags")
    knobs = _recipe_flags(parser)
    parser.add_argument("--pretrain-images", type=int, default=0, help="synthetic images to pre-train on (0: none)")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--baseline", default=BASELINE, help=f"revision to measure first ({BASELINE}; none)")
    args = parser.parse_args()
    labels = args.dataset / "labels.csv"
    if not labels.is_file():
        parser.error(f"{labels} not found: pass --dataset (a folder with labels.csv and images)")
    measured = None if args.baseline == "none" else baseline(args.baseline, args.dataset)

    started = time.monotonic()
    hyperparameters = {name: value for name in knobs if (value := getattr(args, name)) is not None}
    pretrained = None
    if args.pretrain_images:
        synth = WORK / "synth-data"
        if not (synth / "labels.csv").is_file():
            jobs.run_module("detector.synth", ["--output", str(synth), "--count", str(args.pretrain_images)], WORK)
        jobs.offline_store_from_csv(synth / "labels.csv", WORK / "synth-store")
        jobs.preprocess(WORK / "synth-pre", WORK / "synth-store", synth, ratios=(0.9, 0.1, 0.0))
        pre_hp = {**hyperparameters, "epochs": str(args.pretrain_epochs), "warmup_epochs": "1"}
        jobs.train(WORK / "synth-train", WORK / "synth-pre", pre_hp)
        pretrained = WORK / "synth-train" / "checkpoints" / "best.params"
        jobs.say(f"pre-trained on {args.pretrain_images} synthetic images in {time.monotonic() - started:.0f} s")

    store = WORK / "store"
    shutil.rmtree(store, ignore_errors=True)
    jobs.offline_store_from_csv(labels, store)
    report = jobs.preprocess(WORK / "pre", store, args.dataset, ratios=(0.7, 0.15, 0.15))
    model = jobs.train(WORK / "train", WORK / "pre", hyperparameters, pretrained=pretrained)
    evaluation = jobs.evaluate(WORK / "evaluate", model, WORK / "pre")
    minutes = (time.monotonic() - started) / 60
    print(f"dataset: {args.dataset} splits: " + ", ".join(f"{k}={v['images']}" for k, v in report["splits"].items()))
    pretrain = f"pretrain_images={args.pretrain_images} pretrain_epochs={args.pretrain_epochs}"
    print(f"recipe: the declared defaults with {hyperparameters} {pretrain}")
    print(f"best validation mAP {evaluation['model']['best_val_map']} at epoch {evaluation['model']['best_epoch']}")
    print(f"test mAP@0.5: {evaluation['metrics']['map']['value']:.4f}  wall time: {minutes:.1f} min")
    if measured is not None:
        base_map, base_seconds = measured
        print(
            f"baseline {args.baseline}: test mAP@0.5 {base_map:.4f} in {base_seconds / 60:.1f} min; this recipe: "
            f"{evaluation['metrics']['map']['value']:.4f} in {minutes:.1f} min, "
            f"{minutes * 60 / base_seconds:.2f}x the baseline's time"
        )
    print(f"artefacts: {WORK}")


if __name__ == "__main__":
    main()

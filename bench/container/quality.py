"""The quality figures: train a recipe on a real dataset once per seed through preprocess, train and evaluate.

    make bench-quality [SEEDS=3] [DATASET=../shared/datasets/metal-tags] [BASELINE=a57626d|none] [ARGS="--folds 5"]
    python -m bench.container.quality compare work/quality/A.json work/quality/B.json

Preprocesses once (the split is a hash of source_ref: the seed never moves it), then trains and evaluates the
recipe at each seed (the `seed` hyperparameter: initialisation, augmentation and batch order): seeds 1..SEEDS, or
--seed-list. Per seed it prints the test mAP@0.5, precision and recall at the model's own score threshold, the best
validation mAP and the validation F1, and the wall time; then each figure's mean, sample standard deviation and
standard error; and saves them all in work/quality/<label>.json. With --folds K it also trains each seed on K
folds of train + validation (the test split untouched) and reports their mean validation mAP.

First the baseline: the recipe and the code of git revision BASELINE (default: the tree issue 15 started from),
extracted with `git archive` and run by its own bench-quality on the same dataset and container/.venv, at the same
seeds when it takes a seed; then the two are compared. Validation decides: a recipe is better only when its mean
validation mAP exceeds the other's by more than twice the difference's (Welch) standard error; the test split is
scored once per recipe and seed, for the report. The recipe is config/pipeline.yaml's (flags override it);
optionally pre-trained on detector.synth images first.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench.container import baseline, jobs, seeds
from bench.container.results import Result, compare, report, this_machine
from pipeline_def.job_text import job_text

WORK = jobs.REPO / "work" / "quality"
CONFIG = jobs.REPO / "config" / "pipeline.yaml"  # its training recipe is the default: what a deployment trains
BASELINE = "a57626d"  # issue 15's starting point: 100 epochs at 320x224, GluonCV's data pipeline
SEED_MAX = 2**31 - 1  # the seed hyperparameter's range
LABEL = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _recipe_flags(parser: argparse.ArgumentParser) -> list[str]:
    """One flag per hyperparameter, from the image's declaration of them; the default is the config's recipe
    (config/pipeline.yaml's training.hyperparameters over the declared defaults). Returns the knobs' names."""
    from detector.hyperparameters import declared  # importable once bench.container.jobs put it on the path

    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["training"].get("hyperparameters") or {}
    # the dataset's classes, as the pipeline passes them; the seed, which the seed loop sets
    knobs = [name for name in declared() if name not in ("classes", "seed")]
    for name in knobs:
        rule = declared()[name]
        default = config.get(name, rule["default"])
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            default=job_text(default) if name in config else None,
            help=f"{rule['description']} (default: {job_text(default)})",
        )
    return knobs


def _seed_list(text: str) -> list[int]:
    try:
        chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= seed <= SEED_MAX for seed in chosen):
        raise argparse.ArgumentTypeError(f"{text!r}: distinct seeds, each from 0 to {SEED_MAX}")
    return chosen


def _at_least(low: int, name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name}: {value}, at least {low}")
        return value

    return parse


def _label(text: str) -> str:
    if not LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: letters, digits, '.', '_' and '-' only (it names a file)")
    return text


def parser() -> tuple[argparse.ArgumentParser, list[str]]:
    found = argparse.ArgumentParser(
        prog="python -m bench.container.quality",
        description=__doc__.split("\n\n")[0],
        epilog="python -m bench.container.quality compare A.json B.json: compare two saved results, A against B",
        allow_abbrev=False,
    )
    found.add_argument("--dataset", type=Path, default=jobs.REPO.parent / "shared" / "datasets" / "metal-tags")
    chosen = found.add_mutually_exclusive_group()
    chosen.add_argument("--seeds", type=_at_least(1, "--seeds"), default=3, help="train seeds 1..N (default 3)")
    chosen.add_argument("--seed-list", type=_seed_list, default=None, help="these seeds instead, e.g. 4,7,9")
    found.add_argument(
        "--folds",
        type=_at_least(0, "--folds"),
        default=0,
        help="K-fold cross-validation over train + validation: K more trainings per seed (default 0: none)",
    )
    knobs = _recipe_flags(found)
    found.add_argument("--pretrain-images", type=int, default=0, help="synthetic images to pre-train on (0: none)")
    found.add_argument("--pretrain-epochs", type=int, default=10)
    found.add_argument("--baseline", default=BASELINE, help=f"revision to measure first ({BASELINE}; none)")
    found.add_argument("--label", type=_label, default=None, help="names work/quality/<label>.json (default: rev-time)")
    return found, knobs


def revision() -> str:
    """This checkout's short commit, marked when the tree has uncommitted changes (work/ is ignored)."""
    git = ["git", "-C", str(jobs.REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
    changed = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    return commit.stdout.strip() + ("-changed" if changed.strip() else "")


def pretrain(args: argparse.Namespace, hyperparameters: dict[str, str]) -> Path | None:
    """The weights pre-trained on detector.synth images (None without --pretrain-images)."""
    if not args.pretrain_images:
        return None
    started = time.monotonic()
    synth = WORK / "synth-data"
    if not (synth / "labels.csv").is_file():
        jobs.run_module("detector.synth", ["--output", str(synth), "--count", str(args.pretrain_images)], WORK)
    jobs.offline_store_from_csv(synth / "labels.csv", WORK / "synth-store")
    jobs.preprocess(WORK / "synth-pre", WORK / "synth-store", synth, ratios=(0.9, 0.1, 0.0))
    pre_hp = {**hyperparameters, "epochs": str(args.pretrain_epochs), "warmup_epochs": "1"}
    jobs.train(WORK / "synth-train", WORK / "synth-pre", pre_hp)
    jobs.say(f"pre-trained on {args.pretrain_images} synthetic images in {time.monotonic() - started:.0f} s")
    return WORK / "synth-train" / "checkpoints" / "best.params"


def measure(args: argparse.Namespace, knobs: list[str], chosen: list[int]) -> Result:
    """This tree's recipe at each seed, on one preprocessing of the dataset."""
    hyperparameters = {name: value for name in knobs if (value := getattr(args, name)) is not None}
    recipe = seeds.Recipe(hyperparameters, pretrain(args, hyperparameters), args.folds)
    store = WORK / "store"
    shutil.rmtree(store, ignore_errors=True)
    jobs.offline_store_from_csv(args.dataset / "labels.csv", store)
    dataset = jobs.preprocess(WORK / "pre", store, args.dataset, ratios=(0.7, 0.15, 0.15))
    at, commit = datetime.now(UTC), revision()
    runs = seeds.measure(WORK, WORK / "pre", recipe, seeds=chosen)
    notes = [
        f"pre-trained once on {args.pretrain_images} synthetic images for {args.pretrain_epochs} epochs (its seed the"
        " declared default), the same weights for every seed"
    ] * bool(recipe.pretrained)
    return Result(
        label=args.label or f"{commit}-{at:%Y%m%dT%H%M}",
        revision=commit,
        dataset=str(args.dataset.resolve()),
        measured_at=at.isoformat(timespec="seconds"),
        recipe=hyperparameters,
        seeded=True,
        machine=this_machine(),
        folds=args.folds,
        splits={name: split["images"] for name, split in dataset["splits"].items()},
        runs=runs,
        notes=notes,
    )


def run(argv: list[str]) -> None:
    found, knobs = parser()
    args = found.parse_args(argv)
    if not (args.dataset / "labels.csv").is_file():
        found.error(f"--dataset: {args.dataset / 'labels.csv'} not found (a folder with labels.csv and images)")
    if args.folds == 1:
        found.error("--folds: 1, cross-validation needs at least 2 (0: none)")
    chosen = args.seed_list or list(range(1, args.seeds + 1))
    other = None
    if args.baseline != "none":
        other = baseline.measure(args.baseline, args.dataset, chosen, work=WORK, folds=args.folds)
    result = measure(args, knobs, chosen)
    result.save(WORK / f"{result.label}.json")
    lines = [f"dataset: {args.dataset} splits: {result.splits}", *report(result)]
    if other is not None:
        other.save(WORK / f"{other.label}.json")
        lines += [*report(other), *compare(result, other, same_run=True)]
    print("\n".join([*lines, f"figures: {WORK / (result.label + '.json')}", f"artefacts: {WORK}"]))


def compare_saved(argv: list[str]) -> None:
    found = argparse.ArgumentParser(
        prog="python -m bench.container.quality compare",
        description="compare two saved bench-quality results (work/quality/<label>.json): the first against the second",
    )
    found.add_argument("ours", type=Path)
    found.add_argument("theirs", type=Path)
    args = found.parse_args(argv)
    results = []
    for name, path in (("ours", args.ours), ("theirs", args.theirs)):
        if not path.is_file():
            found.error(f"{name}: {path} not found")
        try:
            results.append(Result.load(path))
        except (ValueError, TypeError, KeyError) as error:
            found.error(f"{name}: {path}: {error}")
    ours, theirs = results
    print("\n".join([*report(ours), *report(theirs), *compare(ours, theirs, same_run=False)]))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        compare_saved(argv[1:])
    else:
        run(argv)


if __name__ == "__main__":
    main()

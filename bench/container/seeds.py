"""The seed loop: one recipe trained and evaluated once per seed on one preprocessed dataset.

The split is preprocess's (a hash of source_ref), made once before the loop, so only the `seed` hyperparameter
changes between runs: initialisation, augmentation and batch order. With folds, each seed also trains once per
fold of train + validation (bench.container.folds) and keeps each fold's best validation mAP.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.container import folds, jobs
from bench.container.results import Run

META_FILE = "model-meta.json"  # detector.model.META_FILE, the exported model's metadata


@dataclass(frozen=True)
class Recipe:
    hyperparameters: dict[str, str]  # over the declared defaults; the loop sets `seed`
    pretrained: Path | None = None
    folds: int = 0


def figures(seed: int | None, evaluation: dict[str, Any], meta: dict[str, Any] | None, **measured: Any) -> Run:
    """One run's figures from its evaluation.json and its model-meta.json (None where an older revision's files
    lack one); `measured`: minutes and, with folds, fold_val_maps."""
    model = evaluation.get("model") or {}
    f1 = (meta or {}).get("validation_f1") or {}
    fold_maps = [value for value in measured.get("fold_val_maps", ()) if value is not None]
    return Run(
        seed=seed,
        test_map=evaluation["metrics"]["map"]["value"],
        precision=evaluation.get("precision"),
        recall=evaluation.get("recall"),
        val_map=model.get("best_val_map"),
        val_f1=f1.get("f1"),
        minutes=measured.get("minutes"),
        fold_val_maps=fold_maps,
        cv_val_map=statistics.fmean(fold_maps) if fold_maps else None,
    )


def one_seed(root: Path, splits: Path, recipe: Recipe, *, seed: int, fold_roots: Sequence[Path] = ()) -> Run:
    """Train and evaluate the recipe at `seed` (the wall time counts these two), then each fold at the same seed."""
    hyperparameters = {**recipe.hyperparameters, "seed": str(seed)}
    started = time.monotonic()
    model = jobs.train(root / "train", splits, hyperparameters, pretrained=recipe.pretrained)
    evaluation = jobs.evaluate(root / "evaluate", model, splits)
    minutes = round((time.monotonic() - started) / 60, 2)
    fold_maps = []
    for index, fold in enumerate(fold_roots):
        fold_model = jobs.train(root / f"fold-{index}", fold, hyperparameters, pretrained=recipe.pretrained)
        fold_maps.append(jobs.read_json(fold_model / META_FILE)["best_val_map"])
        shutil.rmtree(root / f"fold-{index}" / "checkpoints", ignore_errors=True)  # 70 MB each, of no further use
    run = figures(seed, evaluation, jobs.read_json(model / META_FILE), minutes=minutes, fold_val_maps=fold_maps)
    jobs.say(f"seed {seed}: test mAP@0.5 {run.test_map:.4f}, best validation mAP {run.val_map} in {minutes} min")
    return run


def measure(work: Path, splits: Path, recipe: Recipe, *, seeds: Sequence[int]) -> list[Run]:
    """Each seed's run of `recipe` on the preprocess root `splits` (its folds cut once, before the first seed)."""
    fold_roots = folds.write_folds(splits, work / "folds", recipe.folds) if recipe.folds else []
    return [one_seed(work / f"seed-{seed}", splits, recipe, seed=seed, fold_roots=fold_roots) for seed in seeds]

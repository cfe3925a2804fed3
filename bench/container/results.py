"""A recipe's measured figures, one run per seed, as `make bench-quality` prints them and saves them
(work/quality/<label>.json), and the comparison of two of them.

The validation split (or the mean over k folds of train + validation) decides between recipes; the test split is
scored once per recipe and seed, for the report, and chooses nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from bench.container.spread import Summary, describe, describe_difference, difference, summarize

# (field, heading): the figures of one seed's run, in the order they are printed
FIGURES = (
    ("test_map", "test mAP@0.5"),
    ("precision", "test precision"),
    ("recall", "test recall"),
    ("val_map", "validation mAP"),
    ("val_f1", "validation F1"),
    ("cv_val_map", "k-fold validation mAP"),
    ("minutes", "minutes"),
)
OWN_DEFAULTS = "its bench's own defaults"  # a baseline revision's recipe, which it does not report


@dataclass(frozen=True)
class Run:
    """One seed's figures: test mAP@0.5, precision and recall at the model's own score threshold (evaluation.json);
    the exported model's best validation mAP and its validation F1 (model-meta.json); with folds, each fold's best
    validation mAP and their mean; the wall time of training and evaluating. None where the code measured did not
    produce a figure."""

    seed: int | None  # None: the revision's bench takes no seed
    test_map: float | None
    precision: float | None = None
    recall: float | None = None
    val_map: float | None = None
    val_f1: float | None = None
    minutes: float | None = None
    fold_val_maps: list[float] = field(default_factory=list)
    cv_val_map: float | None = None


@dataclass
class Result:
    label: str
    revision: str
    dataset: str
    measured_at: str
    recipe: dict[str, str]  # the hyperparameters set over the declared defaults, as the training job gets them
    seeded: bool
    machine: str = ""  # what ran it: the figures of a 2-core day and of another machine are not comparable
    folds: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Summary]:
        return {name: summarize([getattr(run, name) for run in self.runs]) for name, _ in FIGURES}

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["summary"] = {name: dataclasses.asdict(value) for name, value in self.summary().items()}
        return data

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Result:
        """A saved result; its summary is computed again from its runs."""
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {item.name for item in dataclasses.fields(cls)}
        required = [item.name for item in dataclasses.fields(cls) if item.default is item.default_factory is MISSING]
        missing = sorted(name for name in required if name not in data)
        if missing:
            raise ValueError(f"{path}: not a bench-quality result, it lacks {', '.join(missing)}")
        runs = [Run(**run) for run in data["runs"]]
        return cls(**{name: data[name] for name in names if name in data and name != "runs"}, runs=runs)


def this_machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def _cell(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(result: Result) -> list[str]:
    """The per-seed table and the mean, sd (n - 1) and standard error of each figure."""
    shown = [(name, heading) for name, heading in FIGURES if name != "cv_val_map" or result.folds]
    seeds = ", ".join(str(run.seed) for run in result.runs) if result.seeded else "none (the revision takes no seed)"
    lines = [
        f"{result.label}: revision {result.revision}, recipe: {result.recipe or OWN_DEFAULTS}",
        f"measured {result.measured_at} on {result.machine or 'an unnamed machine'}, dataset {result.dataset}"
        f" {result.splits}; validation chooses, the test split is scored once per seed for the report",
        f"seeds: {seeds}; the split does not change with the seed"
        + (f"; {result.folds}-fold cross-validation over train + validation" if result.folds else ""),
        "seed | " + " | ".join(heading for _, heading in shown),
    ]
    for run in result.runs:
        cells = [_cell(getattr(run, name), 2 if name == "minutes" else 4) for name, _ in shown]
        lines.append(" | ".join(["none" if run.seed is None else str(run.seed), *cells]))
    summary = result.summary()
    lines += [f"  {heading}: {describe(summary[name], 2 if name == 'minutes' else 4)}" for name, heading in shown]
    if not result.seeded:
        lines.append("  one unseeded run each: the spread over seeds is unknown")
    return lines + [f"  note: {note}" for note in result.notes]


def deciding_figure(ours: Result, theirs: Result) -> tuple[str, str]:
    """(field, words): the k-fold mean when both were measured with the same folds, else the validation split."""
    if ours.folds and ours.folds == theirs.folds:
        return "cv_val_map", f"the mean validation mAP over {ours.folds} folds of train + validation"
    validation = ours.splits.get("validation")
    return "val_map", f"the validation split's best mAP ({validation or 'its'} images)"


def compare(ours: Result, theirs: Result, *, same_run: bool) -> list[str]:
    """`ours` against `theirs`: the difference of means for validation mAP (which decides) and test mAP (reported),
    each with its Welch standard error and verdict, and the wall-time ratio."""
    figure, words = deciding_figure(ours, theirs)
    mine, other = ours.summary(), theirs.summary()
    lines = [
        f"{ours.label} against {theirs.label}: decided on validation ({words}); the test split is scored once per"
        " recipe and seed, for the report, and chooses nothing",
        f"  validation mAP: {describe_difference(difference(mine[figure], other[figure]))}",
        f"  test mAP@0.5 (reported only): {describe_difference(difference(mine['test_map'], other['test_map']))}",
    ]
    lines.append("  wall time per seed: " + _time_ratio(ours, theirs, same_run=same_run))
    if (ours.dataset, ours.splits) != (theirs.dataset, theirs.splits):
        lines.append(f"  not the same data: {ours.dataset} {ours.splits} against {theirs.dataset} {theirs.splits}")
    for result in (ours, theirs):
        if not result.seeded:
            lines.append(f"  {result.label}: one unseeded run each, its spread over seeds is unknown")
    return lines


def _time_ratio(ours: Result, theirs: Result, *, same_run: bool) -> str:
    mine, other = ours.summary()["minutes"], theirs.summary()["minutes"]
    if mine.mean is None or not other.mean:
        return "not measured on both sides"
    when = "measured in the same run" if same_run else "measured at different times: not the benchmark's ratio"
    return (
        f"{ours.label} {mine.mean / other.mean:.2f}x {theirs.label}'s"
        f" ({mine.mean:.1f} against {other.mean:.1f} min; {when})"
    )

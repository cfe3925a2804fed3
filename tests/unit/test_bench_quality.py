"""make bench-quality's statistics, seed loop, saved results and comparison, on constructed figures.

The training job is stubbed only at bench.container.jobs (the container entry points it runs as processes); the
statistics are checked against figures worked out by hand.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from bench.container import baseline, folds, jobs, quality, seeds
from bench.container.results import Result, Run, compare, report
from bench.container.spread import NO_DIFFERENCE, NO_SPREAD, Summary, describe, difference, summarize


def test_summary_is_the_mean_the_sample_standard_deviation_and_its_standard_error() -> None:
    # Given three seeds' figures 0.70, 0.80, 0.90: mean 0.80, squared deviations 0.02 over n - 1 = 2
    found = summarize([0.70, 0.80, 0.90])

    # Then sd = sqrt(0.01) = 0.1 (not the population's sqrt(0.02 / 3)) and se = 0.1 / sqrt(3)
    assert found.n == 3
    assert found.mean == pytest.approx(0.80)
    assert found.sd == pytest.approx(0.1)
    assert found.se == pytest.approx(0.1 / math.sqrt(3))


def test_one_seed_has_no_spread_and_says_so() -> None:
    found = summarize([0.75, None])  # a figure the run did not produce is left out, and n says so

    assert found == Summary(1, 0.75, None, None)
    assert "no spread" in describe(found)
    assert difference(found, summarize([0.6, 0.7])).verdict == NO_SPREAD
    assert describe(summarize([None])) == "n/a"


def test_the_difference_has_welchs_standard_error_with_unequal_counts() -> None:
    # Given 2 seeds at 0.80, 0.90 (sd^2 0.005) and 4 at 0.60, 0.70, 0.70, 0.80 (sd^2 0.02 / 3)
    ours, theirs = summarize([0.80, 0.90]), summarize([0.60, 0.70, 0.70, 0.80])

    found = difference(ours, theirs)

    assert found.delta == pytest.approx(0.15)
    assert found.se == pytest.approx(math.sqrt(0.005 / 2 + (0.02 / 3) / 4))  # 0.0645: 2 SE = 0.129 < 0.15
    assert found.verdict.startswith("better")


def test_better_and_worse_only_beyond_twice_the_standard_error() -> None:
    tight_high, tight_low = summarize([0.80, 0.81, 0.82]), summarize([0.70, 0.71, 0.72])  # SE of the difference 0.008
    wide_high, wide_low = summarize([0.70, 0.90, 0.80]), summarize([0.65, 0.85, 0.75])  # 0.05 apart, SE 0.082

    assert difference(tight_high, tight_low).verdict.startswith("better")
    assert difference(tight_low, tight_high).verdict.startswith("worse")
    assert difference(wide_high, wide_low).verdict == NO_DIFFERENCE
    assert difference(wide_low, wide_high).verdict == NO_DIFFERENCE
    # just inside and just outside the line: 2 SE = 2 * sqrt(2 * 0.01 / 3) = 0.1633
    line = 2 * math.sqrt(2 * 0.01 / 3)
    assert difference(summarize([x + line * 0.99 for x in (0.7, 0.8, 0.9)]), wide_high).verdict == NO_DIFFERENCE
    assert difference(summarize([x + line * 1.01 for x in (0.7, 0.8, 0.9)]), wide_high).verdict.startswith("better")


def _result(label: str, test_maps: list[float], val_maps: list[float], **fields: Any) -> Result:
    runs = [
        Run(seed=i + 1, test_map=t, precision=0.8, recall=0.7, val_map=v, val_f1=0.75, minutes=20.0 + i)
        for i, (t, v) in enumerate(zip(test_maps, val_maps, strict=True))
    ]
    defaults: dict[str, Any] = {
        "revision": "abc1234",
        "dataset": "metal-tags",
        "measured_at": "2026-12-05T06:00:00+00:00",
        "recipe": {"epochs": "112"},
        "seeded": True,
        "splits": {"train": 148, "validation": 20, "test": 33},
    }
    return Result(label=label, runs=runs, **(defaults | fields))


def test_a_saved_result_reads_back_the_same_with_its_summary(tmp_path: Path) -> None:
    saved = _result("a", [0.70, 0.80, 0.90], [0.85, 0.90, 0.95], notes=["a note"])
    saved.runs[1] = Run(seed=2, test_map=0.80, val_map=0.90, fold_val_maps=[0.8, 0.9], cv_val_map=0.85)

    saved.save(tmp_path / "a.json")

    assert Result.load(tmp_path / "a.json") == saved
    written = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert written["summary"]["test_map"]["sd"] == pytest.approx(0.1)
    assert written["summary"]["val_f1"]["n"] == 2  # the second run has no F1
    assert written["runs"][0]["seed"] == 1


def test_a_file_that_is_not_a_result_is_refused_naming_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"label": "x", "runs": []}', encoding="utf-8")

    with pytest.raises(ValueError, match="lacks dataset, measured_at"):
        Result.load(tmp_path / "x.json")


def test_compare_decides_on_validation_and_reports_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given two saved results: B's validation clearly above A's, their tests within the noise
    _result("a", [0.70, 0.90, 0.80], [0.80, 0.81, 0.82]).save(tmp_path / "a.json")
    _result("b", [0.75, 0.85, 0.80], [0.90, 0.91, 0.92], measured_at="2026-12-06T06:00:00+00:00").save(
        tmp_path / "b.json"
    )

    quality.main(["compare", str(tmp_path / "b.json"), str(tmp_path / "a.json")])

    out = capsys.readouterr().out
    assert "decided on validation (the validation split's best mAP (20 images))" in out
    assert "the test split is scored once per recipe and seed" in out
    assert "validation mAP: +0.1000 (SE 0.0082, Welch; 2 SE = 0.0163): better" in out
    assert f"test mAP@0.5 (reported only): +0.0000 (SE {math.sqrt(0.01 / 3 + 0.0025 / 3):.4f}" in out
    assert NO_DIFFERENCE in out
    assert "not the same data" not in out
    assert "wall time per seed: b 1.00x a's (21.0 against 21.0 min; measured at different times" in out
    assert "1 | 0.7000 | 0.8000 | 0.7000 | 0.8000 | 0.7500 | 20.00" in out  # A's first seed, every figure


def test_compare_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        quality.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])

    assert "ours: " in capsys.readouterr().err


def test_with_folds_on_both_sides_the_k_fold_mean_decides() -> None:
    ours = _result("a", [0.8, 0.8], [0.1, 0.2], folds=5)
    ours.runs[:] = [Run(seed=1, test_map=0.8, cv_val_map=0.9), Run(seed=2, test_map=0.8, cv_val_map=0.91)]
    theirs = _result("b", [0.8, 0.8], [0.9, 0.95], folds=5)
    theirs.runs[:] = [Run(seed=1, test_map=0.8, cv_val_map=0.7), Run(seed=2, test_map=0.8, cv_val_map=0.71)]

    lines = compare(ours, theirs, same_run=True)

    assert "the mean validation mAP over 5 folds of train + validation" in lines[0]
    assert lines[1].startswith("  validation mAP: +0.2000")
    assert "better" in lines[1]


class StubJobs:
    """The container's entry points as bench.container.jobs runs them: each training job's figures depend on its
    seed and its data, written where the real ones write them."""

    def __init__(self) -> None:
        self.preprocessed: list[Path] = []
        self.trained: list[tuple[Path, str]] = []

    def offline_store_from_csv(self, labels: Path, store: Path, source_prefix: str = "") -> int:
        store.mkdir(parents=True, exist_ok=True)
        return 1

    def preprocess(self, root: Path, store: Path, image_root: Path, **_: Any) -> dict[str, Any]:
        self.preprocessed.append(root)
        return {"splits": {"train": {"images": 148}, "validation": {"images": 20}, "test": {"images": 33}}}

    def train(self, root: Path, splits: Path, hyperparameters: dict[str, str], **_: Any) -> Path:
        self.trained.append((splits, hyperparameters["seed"]))
        seed = int(hyperparameters["seed"])
        model = root / "model"
        model.mkdir(parents=True)
        fold_bonus = 0.01 * int(splits.name[-1]) if splits.name.startswith("fold-") else 0.0
        meta = {"best_val_map": 0.8 + seed / 100 + fold_bonus, "validation_f1": {"f1": 0.7 + seed / 100}}
        (model / seeds.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        return model

    def evaluate(self, root: Path, model: Path, splits: Path, **_: Any) -> dict[str, Any]:
        meta = json.loads((model / seeds.META_FILE).read_text(encoding="utf-8"))
        return {
            "metrics": {"map": {"value": meta["best_val_map"] - 0.1}},
            "precision": 0.9,
            "recall": 0.6,
            "model": {"best_val_map": meta["best_val_map"]},
        }


@pytest.fixture
def stub_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StubJobs:
    stub = StubJobs()
    for name in ("offline_store_from_csv", "preprocess", "train", "evaluate"):
        monkeypatch.setattr(jobs, name, getattr(stub, name))
    monkeypatch.setattr(quality, "WORK", tmp_path / "work")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "labels.csv").write_text("source_ref\n", encoding="utf-8")
    return stub


def test_the_seed_loop_preprocesses_once_and_trains_each_seed(
    stub_jobs: StubJobs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When three seeds of the recipe run, with a recipe flag
    quality.main(["--dataset", str(tmp_path / "data"), "--baseline", "none", "--label", "r", "--epochs", "5"])

    # Then one split serves every seed, and seeds 1..3 are trained on it, the recipe's flag kept
    assert stub_jobs.preprocessed == [tmp_path / "work" / "pre"]
    assert stub_jobs.trained == [(tmp_path / "work" / "pre", seed) for seed in ("1", "2", "3")]
    saved = Result.load(tmp_path / "work" / "r.json")
    assert [run.seed for run in saved.runs] == [1, 2, 3]
    assert saved.recipe == {**saved.recipe, "epochs": "5"}
    assert saved.splits == {"train": 148, "validation": 20, "test": 33}
    assert f"{os.cpu_count()} cores" in saved.machine
    assert [run.val_map for run in saved.runs] == pytest.approx([0.81, 0.82, 0.83])
    assert [run.test_map for run in saved.runs] == pytest.approx([0.71, 0.72, 0.73])
    assert [run.val_f1 for run in saved.runs] == pytest.approx([0.71, 0.72, 0.73])
    out = capsys.readouterr().out
    assert "seeds: 1, 2, 3; the split does not change with the seed" in out
    assert "test mAP@0.5: mean 0.7200 sd 0.0100 se 0.0058 (n=3)" in out
    assert "validation F1: mean 0.7200 sd 0.0100" in out
    assert "test precision: mean 0.9000 sd 0.0000" in out


def test_a_seed_list_and_folds_train_each_fold_at_each_seed(
    stub_jobs: StubJobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given folds cut once (their packing is container/tests' to check)
    cut: list[int] = []

    def write_folds(splits: Path, root: Path, count: int) -> list[Path]:
        cut.append(count)
        return [root / f"fold-{index}" for index in range(count)]

    monkeypatch.setattr(folds, "write_folds", write_folds)

    common = ["--dataset", str(tmp_path / "data"), "--baseline", "none", "--label", "f"]
    quality.main(common)
    quality.main([*common, "--seed-list", "7,4", "--folds", "3"])

    # Then no folds without --folds; with them, each seed trains on the split, then on each fold
    assert cut == [3]
    folds_root = tmp_path / "work" / "folds"
    assert stub_jobs.trained[3:] == [
        (where, seed)
        for seed in ("7", "4")
        for where in [tmp_path / "work" / "pre", *(folds_root / f"fold-{i}" for i in range(3))]
    ]
    saved = Result.load(tmp_path / "work" / "f.json")
    assert saved.folds == 3
    assert [run.seed for run in saved.runs] == [7, 4]
    assert saved.runs[0].fold_val_maps == pytest.approx([0.87, 0.88, 0.89])
    assert saved.runs[0].cv_val_map == pytest.approx(0.88)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--seed-list", "3,3"], "--seed-list"),
        (["--seed-list", "1,x"], "--seed-list"),
        (["--seeds", "0"], "--seeds"),
        (["--seeds", "2", "--seed-list", "4"], "not allowed with argument --seeds"),
        (["--folds", "1"], "--folds"),
        (["--label", "../x"], "--label"),
        (["--seed", "5"], "--seed"),  # the loop sets the seed: no abbreviation of --seeds either
    ],
)
def test_bad_flags_are_refused_naming_the_flag(
    stub_jobs: StubJobs, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    with pytest.raises(SystemExit):
        quality.main(["--dataset", str(tmp_path / "data"), "--baseline", "none", *args])

    assert named in capsys.readouterr().err
    assert stub_jobs.trained == []


def test_a_missing_dataset_is_refused(stub_jobs: StubJobs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        quality.main(["--dataset", str(tmp_path / "none"), "--baseline", "none"])

    assert "--dataset: " in capsys.readouterr().err


A57626D_HELP = "usage: python -m bench.container.quality [-h] [--dataset DATASET] [--epochs EPOCHS] [--seed SEED]\n"


def test_what_a_revisions_bench_can_do_is_read_from_its_help() -> None:
    ours = baseline.Tree("new", Path(), quality.parser()[0].format_help())
    old = baseline.Tree("a57626d", Path(), A57626D_HELP)
    oldest = baseline.Tree("older", Path(), "usage: [-h] [--dataset DATASET] [--seeded-thing X]\n")

    assert ours.offers("--seed-list")
    assert ours.offers("--baseline")
    assert not ours.offers("--seed")
    assert old.offers("--seed")
    assert not old.offers("--seed-list")
    assert not old.offers("--baseline")
    assert not oldest.offers("--seed")


class StubBaseline:
    """An extracted revision whose bench takes `--seed` (as a57626d's) or no seed: each call leaves the files its
    real run leaves."""

    def __init__(self, root: Path, help_text: str) -> None:
        self.tree = baseline.Tree("a57626d", root, help_text)
        self.calls: list[list[str]] = []

    def extract(self, revision: str, work: Path) -> baseline.Tree:
        return self.tree

    def bench(self, root: Path, args: list[str], *, quiet: bool = False) -> tuple[list[str], float]:
        self.calls.append(args)
        seed = int(args[args.index("--seed") + 1]) if "--seed" in args else 42
        evaluation = self.tree.work / "evaluate" / "processing" / "output" / "evaluation"
        evaluation.mkdir(parents=True, exist_ok=True)
        figures = {"metrics": {"map": {"value": 0.6 + seed / 100}}, "model": {"best_val_map": 0.8}}
        (evaluation / "evaluation.json").write_text(json.dumps(figures), encoding="utf-8")
        report_dir = self.tree.work / "pre" / "processing" / "output" / "report"
        report_dir.mkdir(parents=True, exist_ok=True)
        splits = {"splits": {"train": {"images": 148}, "validation": {"images": 20}, "test": {"images": 33}}}
        (report_dir / "dataset_report.json").write_text(json.dumps(splits), encoding="utf-8")
        return [], 1200.0


def _stub_baseline(monkeypatch: pytest.MonkeyPatch, root: Path, help_text: str) -> StubBaseline:
    stub = StubBaseline(root, help_text)
    monkeypatch.setattr(baseline, "extract", stub.extract)
    monkeypatch.setattr(baseline, "_bench", stub.bench)
    return stub


def test_a_baseline_that_takes_a_seed_runs_once_per_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = _stub_baseline(monkeypatch, tmp_path, A57626D_HELP)

    found = baseline.measure("a57626d", tmp_path / "data", [1, 2, 3], work=tmp_path)

    assert [call[call.index("--seed") + 1] for call in stub.calls] == ["1", "2", "3"]
    assert all("--baseline" not in call for call in stub.calls)  # a57626d's bench has no such flag
    assert found.seeded
    assert [run.test_map for run in found.runs] == pytest.approx([0.61, 0.62, 0.63])
    assert [run.precision for run in found.runs] == [None] * 3  # its evaluation.json has none: n/a, not 0
    assert [run.minutes for run in found.runs] == [20.0] * 3
    assert found.splits["validation"] == 20


def test_a_baseline_without_a_seed_is_one_run_whose_spread_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = _stub_baseline(monkeypatch, tmp_path, "usage: [-h] [--dataset DATASET]\n")

    found = baseline.measure("older", tmp_path / "data", [1, 2, 3], work=tmp_path)

    assert len(stub.calls) == 1
    assert "--seed" not in stub.calls[0]
    assert not found.seeded
    assert [run.seed for run in found.runs] == [None]
    shown = report(found)
    assert "recipe: its bench's own defaults" in shown[0]
    assert "  one unseeded run each: the spread over seeds is unknown" in shown
    ours = _result("ours", [0.7, 0.8, 0.9], [0.8, 0.85, 0.9])
    lines = compare(ours, found, same_run=True)
    assert NO_SPREAD in lines[1]
    assert NO_SPREAD in lines[2]
    assert any(line.startswith("  not the same data: metal-tags") for line in lines)  # its dataset is tmp_path's
    assert any("baseline-older: one unseeded run each, its spread over seeds is unknown" in line for line in lines)
    assert "ours 1.05x baseline-older's (21.0 against 20.0 min; measured in the same run)" in lines[3]


def test_an_images_fold_is_a_fixed_hash_of_its_source_ref() -> None:
    refs = [f"images/{index:04d}.jpg" for index in range(1000)]

    # the same fold whatever else is folded and in whatever order: pinned, so a change of the hash shows
    assert [folds.fold_of(ref, 5) for ref in ("s3://bucket/images/a.jpg", "images/0001.jpg", "images/0002.jpg")] == [
        1,
        3,
        1,
    ]
    assert [folds.fold_of(ref, 5) for ref in reversed(refs)] == [folds.fold_of(ref, 5) for ref in refs][::-1]
    sizes = [sum(folds.fold_of(ref, 5) == fold for ref in refs) for fold in range(5)]
    assert sum(sizes) == 1000
    assert min(sizes) > 150
    with pytest.raises(ValueError, match="folds: 1"):
        folds.fold_of("x", 1)


def test_a_baseline_with_this_bench_runs_all_seeds_in_one_call_and_reads_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a revision whose bench is this one (it saves its figures as JSON)
    help_text = quality.parser()[0].format_help()
    stub = _stub_baseline(monkeypatch, tmp_path, help_text)
    saved = _result("baseline-origin_main", [0.7, 0.8], [0.9, 0.9], revision="0000000-changed", folds=3)

    def bench(root: Path, args: list[str], *, quiet: bool = False) -> tuple[list[str], float]:
        stub.calls.append(args)
        saved.save(stub.tree.work / f"{args[args.index('--label') + 1]}.json")
        return [], 60.0

    monkeypatch.setattr(baseline, "_bench", bench)

    found = baseline.measure("origin/main", tmp_path / "data", [4, 5], work=tmp_path, folds=3)

    assert len(stub.calls) == 1
    call = stub.calls[0]
    assert call[call.index("--seed-list") + 1] == "4,5"
    assert call[call.index("--baseline") + 1] == "none"
    assert call[call.index("--folds") + 1] == "3"
    assert found.label == "baseline-origin_main"
    assert found.revision == "origin/main"  # not what git says inside the extracted copy
    assert found.runs == saved.runs

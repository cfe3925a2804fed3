"""Evaluate: the exported model on the test split, and the archive it comes in."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from detector.matching import matches
from detector.recordio import Writer

from .conftest import JobResult, run_job

INPUT = Path("processing/input")


def evaluation_root(root: Path, model: Path, splits: Path) -> Path:
    (root / INPUT / "model").mkdir(parents=True)
    with tarfile.open(root / INPUT / "model" / "model.tar.gz", "w:gz") as tar:
        for item in model.iterdir():
            tar.add(item, arcname=item.name)
    (root / INPUT / "test").symlink_to(splits / "processing" / "output" / "test")
    return root


def test_writes_the_report_the_pipeline_reads(trained: JobResult, splits: Path, tmp_path: Path) -> None:
    root = evaluation_root(tmp_path, trained.root / "model", splits)
    result = run_job("detector.evaluate", root, "--score-threshold", "0.01")
    assert result.returncode == 0, result.stderr
    output = root / "processing" / "output" / "evaluation"
    report = json.loads((output / "evaluation.json").read_text())
    value = report["metrics"]["map"]["value"]
    assert isinstance(value, float)
    assert 0 <= value <= 1
    test_report = json.loads((splits / "processing/output/report/dataset_report.json").read_text())["splits"]["test"]
    assert report["counts"]["images"] == test_report["images"]
    assert report["counts"]["boxes"] == test_report["boxes"]
    scratch = report["per_class"]["scratch"]
    assert scratch["true_positives"] + scratch["false_negatives"] == test_report["boxes"]
    assert report["data_shape"] == {"width": 96, "height": 64}  # the shape it was trained at
    assert (output / "predictions.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("chosen", "args", "expected"),
    [
        (0.3, [], (0.3, "model")),  # the model's own threshold
        (0.03, [], (0.1, "floor")),  # raised to the floor
        (0.03, ["--score-threshold-floor", "0.02"], (0.03, "model")),
        (None, [], (0.5, "default")),  # a model trained without validation has none
        (0.3, ["--score-threshold", "0.7"], (0.7, "override")),
    ],
)
def test_counts_at_the_models_own_threshold_unless_floored_or_overridden(
    trained: JobResult, splits: Path, tmp_path: Path, chosen: float | None, args: list[str], expected: tuple[float, str]
) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained.root / "model", model)
    meta = json.loads((model / "model-meta.json").read_text())
    meta.pop("score_threshold", None)
    if chosen is not None:
        meta["score_threshold"] = chosen
    (model / "model-meta.json").write_text(json.dumps(meta))
    root = evaluation_root(tmp_path / "job", model, splits)

    result = run_job("detector.evaluate", root, *args)

    assert result.returncode == 0, result.stderr
    report = json.loads((root / "processing" / "output" / "evaluation" / "evaluation.json").read_text())
    assert (report["score_threshold"], report["score_threshold_source"]) == expected
    assert report["model"]["score_threshold"] == chosen


def test_an_empty_test_split_is_a_clear_failure(trained: JobResult, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    Writer(empty, "test").close()
    root = tmp_path / "job"
    (root / INPUT / "model").mkdir(parents=True)
    with tarfile.open(root / INPUT / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(trained.root / "model", arcname="model")  # a folder inside the archive is fine too
    (root / INPUT / "test").symlink_to(empty)
    result = run_job("detector.evaluate", root, "--score-threshold", "0.5")
    assert result.returncode == 1
    assert result.failure() == "test split is empty: nothing to evaluate"


def _archive(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (tarfile.TarInfo("../escape.txt"), "escapes the extraction folder"),
        (tarfile.TarInfo("/etc/evil"), "escapes the extraction folder"),
    ],
)
def test_archive_members_that_escape_are_refused(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    member.size = 1
    _archive(tmp_path / INPUT / "model" / "model.tar.gz", member)
    result = run_job("detector.evaluate", tmp_path, "--score-threshold", "0.5")
    assert result.returncode == 1
    assert message in result.failure()
    assert not (tmp_path / INPUT / "escape.txt").exists()


def test_links_in_the_archive_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("model-0000.params")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    _archive(tmp_path / INPUT / "model" / "model.tar.gz", link)
    result = run_job("detector.evaluate", tmp_path, "--score-threshold", "0.5")
    assert result.returncode == 1
    assert "'model-0000.params' is a link; refused" in result.failure()


def test_missing_model_archive_is_named(tmp_path: Path) -> None:
    result = run_job("detector.evaluate", tmp_path, "--score-threshold", "0.5")
    assert result.returncode == 1
    assert result.failure().startswith("model: ")
    assert "model.tar.gz not found" in result.failure()


def test_greedy_matching_counts_each_truth_once() -> None:
    truths = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    detections = np.array([[0, 0, 10, 10, 0.9], [1, 1, 10, 10, 0.8], [50, 50, 60, 60, 0.7]], float)
    assert matches(detections, truths) == (1, 2, 1)
    assert matches(np.zeros((0, 5)), truths) == (0, 0, 2)
    assert matches(detections, np.zeros((0, 4))) == (0, 3, 0)

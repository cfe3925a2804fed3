"""Evaluate: the exported model on the test split, and the archive it comes in."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from detector import manifest, nms
from detector.matching import matches
from detector.recordio import Writer
from gluoncv.data import RecordFileDetection

from .conftest import TINY_HYPERPARAMETERS, JobResult, run_job, training_root
from .test_data_changes import TWO, entry

INPUT = Path("processing/input")
OUTPUT = Path("processing/output")


def evaluation_root(root: Path, model: Path, splits: Path) -> Path:
    (root / INPUT / "model").mkdir(parents=True)
    with tarfile.open(root / INPUT / "model" / "model.tar.gz", "w:gz") as tar:
        for item in model.iterdir():
            tar.add(item, arcname=item.name)
    (root / INPUT / "test").symlink_to(splits / "processing" / "output" / "test")
    (root / INPUT / "dataset").symlink_to(splits / "processing" / "output" / "report")
    return root


MANIFEST_URI = "s3://bucket/p/pipeline/abcdefghijkl/Preprocess/report/manifest.jsonl"


def test_writes_the_report_the_pipeline_reads(trained: JobResult, splits: Path, tmp_path: Path) -> None:
    root = evaluation_root(tmp_path, trained.root / "model", splits)
    result = run_job("detector.evaluate", root, "--score-threshold", "0.01", "--manifest-uri", MANIFEST_URI)
    assert result.returncode == 0, result.stderr
    output = root / "processing" / "output" / "evaluation"
    report = json.loads((output / "evaluation.json").read_text())
    # the data it learned from: the run's as-of time, its manifest and the images per split
    dataset_report = json.loads((splits / "processing/output/report/dataset_report.json").read_text())
    assert report["dataset"] == {
        "as_of": dataset_report["as_of"],
        "manifest_uri": MANIFEST_URI,
        "manifest_sha256": dataset_report["manifest"]["sha256"],
        "images": {split: dataset_report["splits"][split]["images"] for split in ("train", "validation", "test")},
    }
    value = report["metrics"]["map"]["value"]
    assert isinstance(value, float)
    assert 0 <= value <= 1
    test_report = json.loads((splits / "processing/output/report/dataset_report.json").read_text())["splits"]["test"]
    assert report["counts"]["images"] == test_report["images"]
    assert report["counts"]["boxes"] == test_report["boxes"]
    scratch = report["per_class"]["scratch"]
    assert scratch["true_positives"] + scratch["false_negatives"] == test_report["boxes"]
    assert report["data_shape"] == {"width": 96, "height": 64}  # the shape it was trained at
    meta = json.loads((trained.root / "model" / "model-meta.json").read_text())
    assert (report["nms_threshold"], report["nms_threshold_source"]) == (
        meta["nms_threshold"], meta["nms_threshold_source"]
    )  # fmt: skip
    assert (output / "predictions.png").stat().st_size > 10_000


def without_nms_threshold(trained: JobResult, folder: Path) -> Path:
    """The trained model as exported before training chose the NMS threshold: its metadata names none."""
    shutil.copytree(trained.root / "model", folder)
    meta = json.loads((folder / "model-meta.json").read_text())
    for key in ("nms_threshold", "nms_threshold_source", "nms_default_f1"):
        meta.pop(key, None)
    (folder / "model-meta.json").write_text(json.dumps(meta))
    return folder


def test_a_model_and_a_champion_exported_before_the_nms_choice_report_gluoncvs_045_baked_in(
    trained: JobResult, splits: Path, tmp_path: Path
) -> None:
    # Given a model and a champion whose metadata names no NMS threshold (GluonCV's 0.45 is in their symbols)
    old = without_nms_threshold(trained, tmp_path / "old")
    root = evaluation_root(tmp_path / "job", old, splits)
    champion = tmp_path / "champion.tar.gz"
    shutil.copyfile(root / INPUT / "model" / "model.tar.gz", champion)

    # When
    result = run_job("detector.evaluate", root, f"--champion-model={champion}", "--champion-version=1")

    # Then both are scored with what their symbols hold, and say so
    assert result.returncode == 0, result.stderr
    report = _evaluation(root)
    assert (report["nms_threshold"], report["nms_threshold_source"]) == (0.45, nms.BAKED_IN)
    entry = report["champion"]
    assert entry["present"] is True
    assert (entry["nms_threshold"], entry["nms_threshold_source"]) == (0.45, nms.BAKED_IN)
    assert entry["map"] == report["metrics"]["map"]["value"]


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


def test_a_manifest_that_is_not_the_one_preprocess_reported_fails_the_job(splits: Path, tmp_path: Path) -> None:
    # Given the run's dataset whose manifest lost a line on its way
    dataset = tmp_path / INPUT / "dataset"
    shutil.copytree(splits / "processing" / "output" / "report", dataset)
    lines = (dataset / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    (dataset / "manifest.jsonl").write_bytes(b"".join(lines[1:]))
    # When evaluate runs, Then it fails naming both digests, before it scores anything
    result = run_job("detector.evaluate", tmp_path, "--manifest-uri", MANIFEST_URI)
    assert result.returncode == 1
    assert "manifest.jsonl has sha256 " in result.failure()
    assert "Preprocess reported " in result.failure()


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


# --- the champion: the approved model the new one would replace ------------------------------------------------


def _archive_of(model: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for item in model.iterdir():
            tar.add(item, arcname=item.name)
    return path


def _evaluation(root: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((root / "processing/output/evaluation/evaluation.json").read_text())
    return report


def _alone(model: Path, splits: Path, root: Path) -> dict[str, Any]:
    """A model's own evaluation, with no champion."""
    result = run_job("detector.evaluate", evaluation_root(root, model, splits))
    assert result.returncode == 0, result.stderr
    return _evaluation(root)


@pytest.fixture(scope="session")
def champion(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny model, trained at another shape (128x96) with another seed: its exported folder."""
    hyperparameters = {**TINY_HYPERPARAMETERS, "data_width": "128", "data_height": "96", "seed": "5"}
    root = training_root(tmp_path_factory.mktemp("champion"), splits, hyperparameters)
    result = run_job("detector.train", root)
    assert result.returncode == 0, result.stderr + result.failure("failure")
    return root / "model"


def test_without_a_champion_the_report_says_so_and_what_the_model_learnt_from(
    trained: JobResult, splits: Path, tmp_path: Path
) -> None:
    report = _alone(trained.root / "model", splits, tmp_path)

    assert report["champion"] == {
        "version": None, "model_data_url": None, "present": False, "reason": "no approved model in the group"
    }  # fmt: skip
    assert report["comparison"] == {
        "champion_version": "none", "champion_map": 0.0, "map_difference": None, "min_improvement": None,
        "required_map": 0.0, "summary": "no champion: no approved model in the group",
    }  # fmt: skip
    assert report["data_changes"] == {"champion_version": None, "absent": "no approved model in the group"}
    model = report["model"]
    assert model["train_images"] == len(RecordFileDetection(str(next((splits / OUTPUT / "train").glob("*.rec")))))
    assert model["validation_images"] > 0
    assert model["training_seconds"] > 0
    assert model["weights"] == "raw"  # the job kept no moving average of its weights
    found = sum(c["true_positives"] for c in report["per_class"].values())
    assert report["recall"] == round(found / report["counts"]["boxes"], 6)
    # both pictures beside the report: the predictions and the model's training curves
    output = tmp_path / "processing/output/evaluation"
    assert (output / "training_curves.png").read_bytes() == (trained.root / "model/training_curves.png").read_bytes()


def test_a_champion_in_s3_is_scored_on_the_same_images_at_its_own_shape(
    trained: JobResult, champion: Path, splits: Path, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    # Given the approved model's archive in a (moto) bucket
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(_archive_of(champion, tmp_path / "champion.tar.gz")), "models", "v3/model.tar.gz")
    root = evaluation_root(tmp_path / "job", trained.root / "model", splits)
    # When the new model is evaluated against it, with a margin
    result = run_job(
        "detector.evaluate", root, "--champion-model=s3://models/v3/model.tar.gz", "--champion-version=3",
        "--min-improvement", "0.05", env=aws_env,
    )  # fmt: skip
    # Then both are scored as each would be alone, the champion at 128x96
    assert result.returncode == 0, result.stderr
    report = _evaluation(root)
    new = _alone(trained.root / "model", splits, tmp_path / "new")
    old = _alone(champion, splits, tmp_path / "old")
    for key in ("metrics", "per_class", "precision", "recall", "score_threshold", "data_shape"):
        assert report[key] == new[key], key
    entry = report["champion"]
    assert entry["present"] is True
    assert (entry["version"], entry["model_data_url"]) == ("3", "s3://models/v3/model.tar.gz")
    assert entry["data_shape"] == {"width": 128, "height": 96} == old["data_shape"]
    assert entry["map"] == old["metrics"]["map"]["value"]
    assert (entry["precision"], entry["recall"], entry["score_threshold"]) == (
        old["precision"], old["recall"], old["score_threshold"]
    )  # fmt: skip
    assert entry["per_class"]["scratch"]["ap"] == old["per_class"]["scratch"]["ap"]
    assert report["comparison"] == {
        "champion_version": "3",
        "champion_map": entry["map"],
        "map_difference": round(report["metrics"]["map"]["value"] - entry["map"], 6),
        "min_improvement": 0.05,
        "required_map": round(entry["map"] + 0.05, 6),
        "summary": f"champion v3 test mAP {entry['map']} + min_improvement 0.05 = {round(entry['map'] + 0.05, 6)}",
    }
    # named without a manifest, as a champion registered before runs pinned their data is
    assert report["data_changes"] == {
        "champion_version": 3,
        "absent": "champion v3 names no data manifest (registered before runs pinned their data)",
    }


def _register(sagemaker: Any, group: str, url: str, status: str, metadata: dict[str, str] | None = None) -> None:
    sagemaker.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": url}],
            "SupportedContentTypes": ["image/jpeg"], "SupportedResponseMIMETypes": ["application/json"],
        },
        **({"CustomerMetadataProperties": metadata} if metadata else {}),
    )  # fmt: skip


# the champion's data, and the run's: one test image relabelled, one train image added
CHAMPION_DATA = [entry("train", "a"), entry("train", "b"), entry("test", "t")]
RUN_DATA = [entry("train", "a"), entry("train", "b"), entry("train", "new"), entry("test", "t", boxes=(TWO,))]


def _with_manifest(root: Path, entries: list[manifest.Entry]) -> Path:
    """The run's manifest where the job reads it: Preprocess's report output, as its `dataset` input (in place of
    the shared synthetic run's, which evaluation_root links there)."""
    folder = root / INPUT / "dataset"
    folder.unlink(missing_ok=True)
    folder.mkdir(parents=True)
    (folder / manifest.MANIFEST_FILE).write_bytes(manifest.dumps(entries))
    return root


def test_the_champion_is_read_from_the_registry_its_newest_approved_version(
    trained: JobResult, champion: Path, splits: Path, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    # Given a group whose versions 1 and 2 are approved, 3 rejected and 4 pending (the archive in a moto bucket)
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket="registry-models")
    s3.upload_file(str(_archive_of(champion, tmp_path / "champion.tar.gz")), "registry-models", "v2/model.tar.gz")
    sagemaker.create_model_package_group(ModelPackageGroupName="detectors")
    s3.put_object(Bucket="registry-models", Key="v2/manifest.jsonl", Body=manifest.dumps(CHAMPION_DATA))
    for version, status in enumerate(("Approved", "Approved", "Rejected", "PendingManualApproval"), start=1):
        metadata = {
            "DataManifest": f"s3://registry-models/v{version}/manifest.jsonl",
            "DataManifestSha256": manifest.digest(manifest.dumps(CHAMPION_DATA)),
        }
        _register(sagemaker, "detectors", f"s3://registry-models/v{version}/model.tar.gz", status, metadata)
    root = _with_manifest(evaluation_root(tmp_path / "job", trained.root / "model", splits), RUN_DATA)

    # When the job is given the group (what the pipeline passes), not a champion
    result = run_job("detector.evaluate", root, "--model-package-group", "detectors", env=aws_env)

    # Then it scores version 2, the newest approved one, as the control plane would name it
    assert result.returncode == 0, result.stderr
    entry = _evaluation(root)["champion"]
    assert (entry["present"], entry["version"]) == (True, "2")
    assert entry["model_data_url"] == "s3://registry-models/v2/model.tar.gz"
    # and compares this run's data with version 2's manifest, named by its metadata
    changes = _evaluation(root)["data_changes"]
    assert changes["champion_version"] == 2
    assert changes["totals"] == {
        "added": 1, "removed": 0, "moved": 0, "relabelled": 1, "pixels_changed": 0, "images": 4, "champion_images": 3,
    }  # fmt: skip
    assert (changes["splits"]["train"]["added"], changes["splits"]["test"]["relabelled"]) == (1, 1)
    assert changes["examples"]["added"] == ["s3://images/new.jpg"]
    assert changes["examples"]["relabelled"] == ["s3://images/t.jpg"]


@pytest.mark.parametrize(
    ("champion_arg", "reason"),
    [
        ("corrupt", "JobError: model archive champion.tar.gz: not a readable tar file"),
        ("missing", "JobError: model: "),  # a path that does not exist
        ("s3://models/nothing/model.tar.gz", "ClientError: An error occurred (404)"),
    ],
)
def test_a_champion_that_cannot_be_read_is_reported_absent_and_the_job_goes_on(
    trained: JobResult, splits: Path, tmp_path: Path, aws_env: dict[str, str], champion_arg: str, reason: str
) -> None:
    corrupt = tmp_path / "champion.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b not really gzip")
    location = {"corrupt": str(corrupt), "missing": str(tmp_path / "gone.tar.gz")}.get(champion_arg, champion_arg)
    boto3.client("s3").create_bucket(Bucket="models")
    root = evaluation_root(tmp_path / "job", trained.root / "model", splits)

    result = run_job(
        "detector.evaluate", root, f"--champion-model={location}", "--champion-version=2", "--min-improvement=0.1",
        env=aws_env,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    report = _evaluation(root)
    assert report["champion"]["present"] is False
    assert report["champion"]["version"] == "2"
    assert report["champion"]["reason"].startswith(reason), report["champion"]["reason"]
    # the new model's figures are untouched, and nothing is asked of it beyond the threshold
    new = _alone(trained.root / "model", splits, tmp_path / "new")
    assert report["metrics"] == new["metrics"]
    assert report["comparison"]["required_map"] == 0.0
    assert report["comparison"]["map_difference"] is None


def test_a_champion_manifest_that_is_not_the_one_its_package_names_is_not_compared(
    trained: JobResult, splits: Path, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    # Given an approved version whose manifest in S3 lost a line since it was registered with its digest
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket="changed-models")
    s3.put_object(Bucket="changed-models", Key="v1/manifest.jsonl", Body=manifest.dumps(CHAMPION_DATA[1:]))
    sagemaker.create_model_package_group(ModelPackageGroupName="changed")
    registered = manifest.digest(manifest.dumps(CHAMPION_DATA))
    metadata = {"DataManifest": "s3://changed-models/v1/manifest.jsonl", "DataManifestSha256": registered}
    _register(sagemaker, "changed", "s3://changed-models/v1/model.tar.gz", "Approved", metadata)
    root = _with_manifest(evaluation_root(tmp_path / "job", trained.root / "model", splits), RUN_DATA)

    # When the run is evaluated against it
    result = run_job("detector.evaluate", root, "--model-package-group", "changed", env=aws_env)

    # Then the job succeeds and says the champion's data cannot be compared, naming both digests
    assert result.returncode == 0, result.stderr
    found = manifest.digest(manifest.dumps(CHAMPION_DATA[1:]))
    assert _evaluation(root)["data_changes"] == {
        "champion_version": 1,
        "absent": f"champion v1's manifest s3://changed-models/v1/manifest.jsonl: sha256 {found}, not the {registered}"
        " its package names",
    }


@pytest.mark.parametrize(
    ("champion_manifest", "run_data", "reason"),
    [
        (
            "s3://models/nothing/manifest.jsonl",
            RUN_DATA,
            "champion v2's manifest s3://models/nothing/manifest.jsonl: NoSuchKey: An error occurred (NoSuchKey)",
        ),
        ("damaged", RUN_DATA, "champion v2's manifest {damaged}: ManifestError: line 2: not JSON"),
        ("s3://models/v2/manifest.jsonl", None, "this run's manifest {dataset}: FileNotFoundError"),
    ],
)
def test_a_manifest_that_cannot_be_read_leaves_the_changes_absent_and_the_job_goes_on(
    trained: JobResult,
    splits: Path,
    tmp_path: Path,
    aws_env: dict[str, str],
    champion_manifest: str,
    run_data: list[manifest.Entry] | None,
    reason: str,
) -> None:
    # Given a champion named with its manifest, of which one side is gone or damaged
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(manifest.dumps(CHAMPION_DATA[:1]) + b"{\n")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="v2/manifest.jsonl", Body=manifest.dumps(CHAMPION_DATA))
    root = evaluation_root(tmp_path / "job", trained.root / "model", splits)
    if run_data is None:
        (root / INPUT / "dataset").unlink()  # the job without its dataset input
    else:
        _with_manifest(root, run_data)
    location = str(damaged) if champion_manifest == "damaged" else champion_manifest

    # When the run is evaluated (the champion's archive is missing too: that is reported apart)
    result = run_job(
        "detector.evaluate", root, f"--champion-model={tmp_path / 'gone.tar.gz'}", "--champion-version=2",
        f"--champion-manifest={location}", env=aws_env,
    )  # fmt: skip

    # Then the job succeeds and says why there is no comparison of the data
    assert result.returncode == 0, result.stderr
    changes = _evaluation(root)["data_changes"]
    expected = reason.format(damaged=damaged, dataset=root / INPUT / "dataset" / manifest.MANIFEST_FILE)
    assert set(changes) == {"champion_version", "absent"}
    assert changes["champion_version"] == 2
    assert changes["absent"].startswith(expected), changes["absent"]


def test_a_margin_out_of_range_is_refused(tmp_path: Path) -> None:
    result = run_job("detector.evaluate", tmp_path, "--min-improvement", "2")
    assert result.returncode == 2
    assert "--min-improvement must be between -1 and 1" in result.stderr

"""Fixtures of the container tests: tiny synthetic datasets, job roots, a moto server on loopback."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from detector import synth

from sam_stack.container import container_environment
from sam_stack.offline_store import OfflineStore

pytest_plugins = ["local.pytest_aws"]  # moto_endpoint, aws_env

CONTAINER = Path(__file__).resolve().parent.parent
REPO = CONTAINER.parent
WRITTEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RATIOS = ("0.6", "0.2", "0.2")
# the offline store of template.yaml's feature group, as Feature Store writes it
OFFLINE_STORE = OfflineStore.of_template()


class JobResult:
    def __init__(self, process: subprocess.CompletedProcess[str], root: Path) -> None:
        self.returncode = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        self.root = root

    def failure(self, kind: str = "message") -> str:
        path = self.root / "output" / kind
        return path.read_text(encoding="utf-8") if path.is_file() else ""


def run_job(module: str, root: Path, *args: str, env: dict[str, str] | None = None) -> JobResult:
    """Run an entry point as its job would: a process, with OPT_ML_ROOT moved to `root`."""
    environment = container_environment(env or {}, {"OPT_ML_ROOT": str(root)})
    process = subprocess.run(
        [sys.executable, "-m", module, *args], env=environment, capture_output=True, text=True, check=False, timeout=600
    )
    return JobResult(process, root)


def labels(folder: Path) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def store(root: Path, rows: list[dict[str, Any]], written: datetime = WRITTEN, deleted: bool = False) -> Path:
    """Rows into the job root's offline-store input, as one more parquet file."""
    folder = root / "processing" / "input" / "offline-store"
    OFFLINE_STORE.write(folder, rows, written, deleted=deleted)
    return folder


def preprocess_args(data: Path, *extra: str) -> list[str]:
    train, validation, test = RATIOS
    return [
        "--feature-group", "scratches", "--classes", "scratch", "--image-root", str(data),
        "--train-ratio", train, "--validation-ratio", validation, "--test-ratio", test, "--min-box-size", "2", *extra,
    ]  # fmt: skip


def report(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (root / "processing/output/report/dataset_report.json").read_text(encoding="utf-8")
    )
    return data


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic photographs and their labels.csv (shared, read-only)."""
    folder = tmp_path_factory.mktemp("synthetic")
    synth.generate(folder, 24, seed=11)
    return folder


@pytest.fixture(scope="session")
def splits(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocess job root holding train/validation/test RecordIO made from the synthetic set."""
    root = tmp_path_factory.mktemp("preprocessed")
    store(root, labels(synthetic))
    result = run_job("detector.preprocess", root, *preprocess_args(synthetic))
    assert result.returncode == 0, result.stderr
    return root


TINY_HYPERPARAMETERS = {
    "backbone": "mobilenet0.25",
    "epochs": "2",
    "batch_size": "4",
    "warmup_epochs": "1",
    "data_width": "96",
    "data_height": "64",
    "classes": "scratch",
}


def training_root(
    root: Path, splits: Path, hyperparameters: dict[str, str], channels: tuple[str, ...] = ("train", "validation")
) -> Path:
    for channel in channels:
        target = root / "input" / "data" / channel
        target.mkdir(parents=True)
        for item in (splits / "processing" / "output" / channel).iterdir():
            (target / item.name).symlink_to(item)
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    return root


def finished_training(root: Path, splits: Path, hyperparameters: dict[str, str]) -> JobResult:
    """A training job in `root` on the synthetic splits, which must succeed."""
    result = run_job("detector.train", training_root(root, splits, hyperparameters))
    assert result.returncode == 0, result.stderr + result.failure("failure")
    return result


@pytest.fixture(scope="session")
def trained(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    """A finished tiny training job (two epochs at 96x64)."""
    return finished_training(tmp_path_factory.mktemp("training"), splits, TINY_HYPERPARAMETERS)

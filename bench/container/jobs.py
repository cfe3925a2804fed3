"""Runs the container's entry points as SageMaker would, on a local /opt/ml root (for benchmarks and recipes).

Each job gets its own root: inputs are copied where the job expects them, the command runs as a process of
container/.venv with OPT_ML_ROOT pointing there, and outputs are read back from the same root.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sam_stack import container
from sam_stack.offline_store import OfflineStore

REPO, CONTAINER = container.REPO, container.CONTAINER
CONTAINER_PYTHON = container.CONTAINER_BIN / "python"
sys.path.insert(0, str(CONTAINER))  # these benchmarks run in container/.venv, beside the detector package


def environment(root: Path) -> dict[str, str]:
    return {**os.environ, "OPT_ML_ROOT": str(root), "PYTHONPATH": str(CONTAINER), "PYTHONWARNINGS": "ignore"}


def run_module(module: str, args: list[str], root: Path) -> float:
    """Run `python -m module args` in container/.venv; returns its wall time; raises on failure with its reason."""
    started = time.monotonic()
    process = subprocess.run([str(CONTAINER_PYTHON), "-m", module, *args], env=environment(root), check=False)
    if process.returncode:
        failure = next((p for p in (root / "output" / "failure", root / "output" / "message") if p.is_file()), None)
        reason = failure.read_text(encoding="utf-8") if failure else f"exit code {process.returncode}"
        raise RuntimeError(f"{module} failed: {reason}")
    return time.monotonic() - started


def offline_store_from_csv(labels: Path, store: Path, source_prefix: str = "") -> int:
    """Write a labels CSV as one offline-store parquet file (as Feature Store writes it); returns the row count."""
    rows = list(csv.DictReader(labels.open(encoding="utf-8")))
    for row in rows:
        row["source_ref"] = source_prefix + row["source_ref"]
    OfflineStore.of_template().write(store, rows, datetime.now(UTC))
    return len(rows)


def preprocess(
    root: Path, store: Path, image_root: Path, *, ratios: tuple[float, float, float], classes: str = "scratch"
) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    target = root / "processing" / "input" / "offline-store"
    shutil.copytree(store, target)
    args = ["--feature-group", "local", "--classes", classes, "--image-root", str(image_root), "--min-box-size", "2"]
    for name, ratio in zip(("--train-ratio", "--validation-ratio", "--test-ratio"), ratios, strict=True):
        args += [name, str(ratio)]
    run_module("detector.preprocess", args, root)
    return read_json(root / "processing" / "output" / "report" / "dataset_report.json")


def train(root: Path, splits: Path, hyperparameters: dict[str, str], *, pretrained: Path | None = None) -> Path:
    """Train on the train/validation outputs of a preprocess root; returns the model folder."""
    shutil.rmtree(root, ignore_errors=True)
    for channel in ("train", "validation"):
        shutil.copytree(splits / "processing" / "output" / channel, root / "input" / "data" / channel)
    if pretrained is not None:
        (root / "input" / "data" / "pretrained").mkdir(parents=True)
        shutil.copy(pretrained, root / "input" / "data" / "pretrained" / "init.params")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    run_module("detector.train", [], root)
    return root / "model"


def evaluate(root: Path, model: Path, splits: Path, *, score_threshold: float | None = None) -> dict[str, Any]:
    """Evaluate at the model's own score threshold (chosen on its validation split), or at `score_threshold`."""
    shutil.rmtree(root, ignore_errors=True)
    inputs = root / "processing" / "input"
    (inputs / "model").mkdir(parents=True)
    with tarfile.open(inputs / "model" / "model.tar.gz", "w:gz") as tar:
        for item in sorted(model.iterdir()):
            tar.add(item, arcname=item.name)
    shutil.copytree(splits / "processing" / "output" / "test", inputs / "test")
    override = [] if score_threshold is None else ["--score-threshold", str(score_threshold)]
    run_module("detector.evaluate", override, root)
    return read_json(root / "processing" / "output" / "evaluation" / "evaluation.json")


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

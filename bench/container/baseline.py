"""Another revision's recipe measured with its own code: `git archive` of the revision, run by its own bench-quality
on the same dataset and container/.venv, once per seed when its bench takes a seed.

What its bench can do is read from its `--help`: `--seed-list` (this bench: all seeds in one call, its figures read
from the JSON it saves), `--seed` (one call per seed, as a57626d's: its figures read from the evaluation.json and
model-meta.json it leaves), or neither (one unseeded run, whose spread is unknown; said so in the output).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.container import jobs
from bench.container.results import Result, Run, this_machine
from bench.container.seeds import META_FILE, figures

QUALITY = "bench.container.quality"


@dataclass(frozen=True)
class Tree:
    revision: str
    root: Path
    help: str  # its bench-quality's --help

    @property
    def work(self) -> Path:
        return self.root / "work" / "quality"

    def offers(self, flag: str) -> bool:
        return re.search(rf"{re.escape(flag)}\b(?!-)", self.help) is not None


def name_of(revision: str) -> str:
    """The revision as a file name (a branch may hold '/')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", revision)


def extract(revision: str, work: Path) -> Tree:
    """The revision's whole tree (what its bench imports) under `work`, with this checkout's container/.venv."""
    root = work / "baseline" / name_of(revision)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(jobs.REPO), "archive", revision], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as members:
        members.extractall(root, filter="data")
    (root / "container" / ".venv").symlink_to(jobs.CONTAINER / ".venv")  # the same packages
    jobs.say(f"baseline: {revision}'s recipe and code in {root}")
    return Tree(revision, root, "".join(_bench(root, ["--help"], quiet=True)[0]))


def _bench(root: Path, args: list[str], *, quiet: bool = False) -> tuple[list[str], float]:
    """Run the tree's bench-quality with `args`: (its output lines, wall seconds); its lines shown as they come."""
    started = time.monotonic()
    lines = []
    with subprocess.Popen(
        [str(jobs.CONTAINER_PYTHON), "-m", QUALITY, *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if not quiet:
                jobs.say(f"  baseline | {line.rstrip()}")
            lines.append(line)
    if process.returncode:
        raise RuntimeError(f"the baseline's bench failed (exit code {process.returncode}): {''.join(lines[-20:])}")
    return lines, time.monotonic() - started


def _splits(tree: Tree) -> dict[str, int]:
    report = jobs.read_json(tree.work / "pre" / "processing" / "output" / "report" / "dataset_report.json")
    return {name: split["images"] for name, split in report["splits"].items()}


def _one_run(tree: Tree, dataset: Path, seed: int | None) -> Run:
    """One call of a bench that takes at most one seed; its figures from the files its run leaves."""
    args = ["--dataset", str(dataset.resolve())] + ([] if seed is None else ["--seed", str(seed)])
    if tree.offers("--baseline"):
        args += ["--baseline", "none"]  # its own baseline is not what is measured here
    _, seconds = _bench(tree.root, args)
    evaluation = jobs.read_json(tree.work / "evaluate" / "processing" / "output" / "evaluation" / "evaluation.json")
    meta_file = tree.work / "train" / "model" / META_FILE
    meta = jobs.read_json(meta_file) if meta_file.is_file() else None
    return figures(seed, evaluation, meta, minutes=round(seconds / 60, 2))


def measure(revision: str, dataset: Path, seeds: Sequence[int], *, work: Path, folds: int = 0) -> Result:
    """The revision's figures at `seeds`, or its one unseeded run when its bench takes no seed."""
    tree = extract(revision, work)
    label = f"baseline-{name_of(revision)}"
    if tree.offers("--seed-list"):
        args = ["--dataset", str(dataset.resolve()), "--seed-list", ",".join(map(str, seeds)), "--baseline", "none"]
        args += ["--label", label] + (["--folds", str(folds)] if folds else [])
        _bench(tree.root, args)
        # the extracted tree is no checkout: it cannot name its own revision
        return dataclasses.replace(Result.load(tree.work / f"{label}.json"), revision=revision)
    seeded = tree.offers("--seed")
    runs = [_one_run(tree, dataset, seed) for seed in seeds] if seeded else [_one_run(tree, dataset, None)]
    notes = [f"{revision}'s bench: its own recipe; its time per seed includes its own preprocessing"]
    if folds:
        notes.append(f"{revision}'s bench cannot cut folds: compared on the validation split")
    return Result(
        label=label,
        revision=revision,
        dataset=str(dataset.resolve()),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        recipe={},
        seeded=seeded,
        machine=this_machine(),
        splits=_splits(tree),
        runs=runs,
        notes=notes,
    )

"""Every `python -m detector.X` answers --help with what it does and refuses what it does not know with its usage,
starting no work either way. `train` and `serve` are what SageMaker starts with no arguments: their bare behaviour
is the job's (tests/test_train.py, tests/test_serve.py); here only --help and the refusal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sam_stack.container import container_environment

# module: (a phrase of what it does, whether it may load MXNet to answer --help)
ENTRY_POINTS = {
    "preprocess": ("Processing step", False),
    "train": ("Training job", False),
    "evaluate": ("Processing step", True),
    "ingest": ("Labelled images into S3", False),
    "synth": ("synthetic scratch photographs", False),
    "serve": ("SageMaker hosting", False),
    "predict": ("Detections for images", True),
}


def entry_point(module: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The module as a job runs it, its /opt/ml moved to `root`; -X importtime names every module it loads."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", f"detector.{module}", *args],
        env=container_environment({}, {"OPT_ML_ROOT": str(root)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded_mxnet(stderr: str) -> bool:
    return re.search(r"^import time:.*\|\s+mxnet$", stderr, flags=re.MULTILINE) is not None


@pytest.mark.parametrize("module", list(ENTRY_POINTS))
def test_help_says_what_the_module_does_and_starts_nothing(module: str, tmp_path: Path) -> None:
    # When the module is asked for --help
    done = entry_point(module, tmp_path, "--help")

    # Then it prints its usage and what it does, and exits 0 having written nothing
    phrase, may_load_mxnet = ENTRY_POINTS[module]
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.match(rf"usage: python3? -m detector\.{module} ", done.stdout)
    assert phrase in done.stdout
    assert list(tmp_path.iterdir()) == []
    # and answers before MXNet loads wherever that takes no more than parsing first
    assert may_load_mxnet or not loaded_mxnet(done.stderr)


@pytest.mark.parametrize("module", list(ENTRY_POINTS))
@pytest.mark.parametrize("argument", ["--no-such-option", "stray"])
def test_an_unknown_option_or_a_stray_argument_is_refused_with_the_usage(
    module: str, argument: str, tmp_path: Path
) -> None:
    # When the module is given an option it does not have, or an argument it does not take
    done = entry_point(module, tmp_path, argument)

    # Then it exits 2 with its usage on stderr, before any work: no job output, no failure file
    assert done.returncode == 2, done.stderr[-2000:]
    refusal = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert re.match(rf"usage: python3? -m detector\.{module} ", refusal[0])
    assert re.match(rf"python3? -m detector\.{module}: error: ", refusal[-1])
    assert list(tmp_path.iterdir()) == []

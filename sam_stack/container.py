"""Processes of container/.venv, the environment the image holds, as the stack's jobs run them: the image's
`detector` package on the path, and the request checks loaded at start-up that hold every job process to what AWS
and the job's role allow (local/boot/sitecustomize.py: AWS's request constraints always, the role when the local
stack names one). The local stack's jobs, `make run`, the tests and the benchmarks start them so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINER = REPO / "container"
CONTAINER_BIN = CONTAINER / ".venv" / "bin"
# loaded by path by a process of another environment: a folder to put first on its PYTHONPATH, not a package
STARTUP_CHECKS = REPO / "local" / "boot"


def job_pythonpath(*paths: Path | str) -> str:
    """PYTHONPATH for a process of another environment (container/.venv) that installs the checks at start-up."""
    return os.pathsep.join([str(STARTUP_CHECKS), *map(str, paths)])


def container_environment(*layers: dict[str, str]) -> dict[str, str]:
    """The environment of a process of container/.venv: this one's with `layers` over it, the `detector` package
    on the path, and AWS's request constraints installed at start-up."""
    merged: dict[str, str] = {**os.environ}
    for layer in layers:
        merged.update(layer)
    return {**merged, "PYTHONPATH": job_pythonpath(CONTAINER), "PYTHONWARNINGS": "ignore"}


def run_module(
    module: str, *args: str, env: dict[str, str], timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` in container/.venv with `env` over this process's environment, its output captured."""
    return subprocess.run(  # noqa: S603 (the image's own entry points, in its environment)
        [str(CONTAINER_BIN / "python"), "-m", module, *args],
        env=container_environment(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )

"""Every shell example of the README that needs no AWS account runs as written, in a copy of this checkout with
the same environments, against the local stack it starts itself (`make up` ... `make down`): a README example that
stops working fails here. The ones that need an account or take minutes are checked in tests/unit/test_readme.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.readme import Block, blocks

RUNNABLE = [block for block in blocks(REPO / "README.md") if block.info == "sh"]
ENVIRONMENTS = (".venv", "container/.venv", ".tools")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tracked and new files of this checkout (their times kept, so make finds the environments up to date),
    with the environments linked in and a work/ of its own."""
    root = tmp_path_factory.mktemp("readme") / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    for name in ENVIRONMENTS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(REPO / name)
    # make in the copy must find the linked environments up to date, or it would reinstall into this checkout's
    stamps = [".venv/.installed", "container/.venv/.installed", ".tools/sam/.installed"]
    if subprocess.run(["make", "-q", *stamps], cwd=root, capture_output=True, timeout=60).returncode != 0:
        pytest.fail("an environment is older than its requirements: run `make venv container-venv` first")
    yield root
    subprocess.run(["make", "down"], cwd=root, capture_output=True, timeout=120, check=False)


def test_the_readme_has_examples_to_run() -> None:
    assert any("make up" in block.text for block in RUNNABLE)
    assert any("pipeline_def" in block.text for block in RUNNABLE)


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"line{block.line}" for block in RUNNABLE])
def test_a_readme_example_runs_as_written(block: Block, checkout: Path) -> None:
    environment = {**os.environ, "LOCAL_API_PORT": str(_free_port())}
    for name in [n for n in environment if n.startswith("AWS_")]:
        del environment[name]  # no account: nothing of this machine's AWS setup may be what makes it work
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail"], input=block.text, cwd=checkout, env=environment,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == block.expected_exit(), f"{block.where}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

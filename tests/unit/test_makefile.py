"""`make help` is the Makefile's index: every target a person can call is listed in it, with what it does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO


def phony_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    declared = re.search(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    assert declared, "the Makefile declares its targets in one .PHONY line"
    return set(declared.group(1).split())


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_phony_target_with_a_description() -> None:
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True
    )
    described = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^  ([a-z0-9-]+)\s+(\S.*)$", listed.stdout, flags=re.MULTILINE)
    }
    assert phony_targets() - set(described) == set()
    assert all(described.values())


# each environment the Makefile creates: (its variable, the target under it, what its first creation says it holds)
ENVIRONMENTS = [
    ("VENV", "{}/.installed", "control plane, tests, linters"),
    ("CONTAINER_VENV", "{}/.installed", "MXNet 1.9.1, GluonCV"),
    ("TOOLS", "{}/sam/.installed", "sam with its own pinned boto3"),
]


def fake_python(folder: Path, version: str) -> Path:
    """A `python` that reports `version` and makes a 'venv' whose python succeeds at everything (pip included)."""
    path = folder / f"python{version}"
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -c ]; then echo {version}; exit 0; fi\n'
        'if [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin" && ln -s /bin/true "$3/bin/python"; fi\n'
    )
    path.chmod(0o755)
    return path


def make_environment(variable: str, target: str, folder: Path, python: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", f"{variable}={folder}", f"PYTHON={python}", target.format(folder)],
        cwd=REPO,
        env=OWN_MAKE,
        capture_output=True,
        text=True,
        timeout=60,
    )


# a make of its own, as a person runs it: not a sub-make of `make unit` (whose messages say make[1])
OWN_MAKE = {k: v for k, v in os.environ.items() if k not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS"}}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("variable", "target", "holds"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_the_first_creation_says_what_it_makes_and_how_long_before_the_quiet_installs(
    variable: str, target: str, holds: str, tmp_path: Path
) -> None:
    # Given Python 3.11 (a stand-in whose venv's pip does nothing)
    python = fake_python(tmp_path, "3.11")

    # When make creates the environment
    done = make_environment(variable, target, tmp_path / "env", python)

    # Then it first says what it is making, what it holds and roughly how long it takes, then installs
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    created = target.format(tmp_path / "env").removesuffix("/.installed")
    assert first.startswith(f"creating {created} (")
    assert holds in first
    assert re.search(r"about \d+ minutes? and [\d.]+ [MG]B the first time", first)
    assert rest
    assert all("pip install" in line for line in rest)
    # and a second time, with nothing changed, it neither says nor installs anything
    again = make_environment(variable, target, tmp_path / "env", python)
    assert (again.returncode, again.stdout) == (0, f"make: '{target.format(tmp_path / 'env')}' is up to date.\n")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("variable", "target", "holds"), ENVIRONMENTS, ids=[e[0] for e in ENVIRONMENTS])
def test_a_missing_python_or_one_that_is_not_3_11_is_named_before_anything_is_made(
    variable: str, target: str, holds: str, tmp_path: Path
) -> None:
    # When PYTHON names no program, Then make stops at once naming it and PYTHON=, and makes nothing
    missing = make_environment(variable, target, tmp_path / "env", tmp_path / "python3.11")
    assert missing.returncode != 0
    assert missing.stderr.startswith(
        f"{tmp_path / 'python3.11'} not found: install Python 3.11 or pass PYTHON=/path/to/python3.11\n"
    )
    assert not (tmp_path / "env").exists()

    # When PYTHON is another version, Then make refuses naming the version found
    other = make_environment(variable, target, tmp_path / "env", fake_python(tmp_path, "3.12"))
    assert other.returncode != 0
    assert f"{tmp_path / 'python3.12'} is Python 3.12, not 3.11" in other.stderr
    assert "PYTHON=/path/to/python3.11" in other.stderr
    assert not (tmp_path / "env").exists()

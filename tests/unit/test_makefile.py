"""`make help` is the Makefile's index: every target a person can call is listed in it, with what it does."""

from __future__ import annotations

import re
import shutil
import subprocess

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

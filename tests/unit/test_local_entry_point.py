"""`python -m local` answers --help, refuses an unknown command with its usage, and starts nothing unasked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from local.__main__ import USAGE, main
from tests.conftest import REPO


def test_help_prints_the_commands_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--help", "-h", "help"):
        assert main([flag]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m local COMMAND")
        assert all(f"  {command} " in out for command in ("run", "up", "down", "serve", "slack", "click"))


def test_no_command_starts_nothing_and_an_unknown_one_is_refused_with_the_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == USAGE
    assert main(["stat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m local: unknown command 'stat'")
    assert USAGE in err


def test_the_module_itself_answers_help_and_exits_with_its_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "usage: python -m local COMMAND [options]")
    refused = subprocess.run(
        [sys.executable, "-m", "local", "nope"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "unknown command 'nope'" in refused.stderr

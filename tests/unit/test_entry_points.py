"""Every `python -m` entry point of .venv answers --help with its commands, gives each command's options with
`COMMAND --help`, and refuses no command or an unknown one with its usage (exit 2), starting nothing. The
container's modules are held to the same in container/tests/test_entry_points.py (they run in container/.venv)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from rollout.__main__ import COMMANDS as ROLLOUT_COMMANDS
from rollout.__main__ import _parser as rollout_parser
from tests.conftest import REPO

# program: its commands, and an option that each command's --help names (None: the command has none of its own)
ENTRY_POINTS: dict[str, dict[str, str | None]] = {
    "local": {
        "run": "--dataset",
        "up": "--port",
        "down": "--port",
        "serve": "--port",
        "slack": None,
        "click": "--version",
    },
    "rollout": {
        "build": "--sam",
        "deploy": "--no-confirm",
        "image": "--gpu",
        "start-run": "--idempotency-key",
        "ingest": "--dataset",
        "destroy": "--force",
        "account-setup": None,
    },
    "pipeline_def": {
        "build": "--config",
        "show": "--config",
        "diff": "--ssm-parameter",
        "upsert": "--ssm-parameter",
        "hyperparameters": "--write",
    },
    "scratch_cli": {"runs": "start", "models": "approve", "endpoint": None, "audit": None, "config": None},
}
COMMANDS = [(program, command) for program, commands in ENTRY_POINTS.items() for command in commands]


def run(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    # wide and plain, so typer's rich help keeps one command to a line
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", program, *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )


def usage_line(text: str, program: str) -> bool:
    return re.search(rf"^\s*usage: python -m {program}\b", text, flags=re.MULTILINE | re.IGNORECASE) is not None


@pytest.mark.parametrize("program", list(ENTRY_POINTS))
def test_help_names_the_program_and_lists_each_command_on_a_line_of_its_own(program: str) -> None:
    # When the program is asked for --help
    done = run(program, "--help")

    # Then it exits 0 with its usage, and each command starts a line that says what it does
    assert done.returncode == 0, done.stderr
    assert usage_line(done.stdout, program)
    for command in ENTRY_POINTS[program]:
        assert re.search(rf"^[\s│]*{command}\s+\S", done.stdout, flags=re.MULTILINE), f"{command} is not listed"


@pytest.mark.parametrize(("program", "command"), COMMANDS)
def test_each_commands_help_gives_its_options_and_starts_nothing(program: str, command: str) -> None:
    # When a command is asked for --help (no local stack, no AWS credentials needed)
    done = run(program, command, "--help")

    # Then it exits 0 with that command's usage and options
    assert done.returncode == 0, done.stderr
    assert re.search(rf"usage: python -m {program} (\[.*\] )?{command}\b", done.stdout, flags=re.IGNORECASE)
    option = ENTRY_POINTS[program][command]
    assert option is None or option in done.stdout


@pytest.mark.parametrize("program", list(ENTRY_POINTS))
@pytest.mark.parametrize("args", [(), ("no-such-command",)], ids=["no command", "unknown command"])
def test_no_command_or_an_unknown_one_is_refused_with_the_usage(program: str, args: tuple[str, ...]) -> None:
    # When the program is started with no command, or one it does not have
    done = run(program, *args)

    # Then it starts nothing: exit 2 with its usage on stderr (typer's no_args_is_help: the whole help, on stdout)
    assert done.returncode == 2, done.stdout
    if program == "scratch_cli" and not args:
        assert usage_line(done.stdout, program)
    else:
        assert usage_line(done.stderr, program)
        assert done.stdout == ""


@pytest.mark.parametrize(("program", "command"), [(p, c) for p, c in COMMANDS if p != "scratch_cli"])
def test_an_unknown_option_of_a_command_is_refused_with_its_usage(program: str, command: str) -> None:
    done = run(program, command, "--no-such-option")

    assert done.returncode == 2, done.stderr
    assert re.search(rf"usage: python -m {program} (\[.*\] )?{command}\b", done.stderr)


def test_rollout_answers_help_without_loading_boto3() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rollout", "deploy", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert not re.search(r"^import time:.*\|\s+boto3$", done.stderr, flags=re.MULTILINE)


def test_rollout_takes_the_environment_before_or_after_the_command() -> None:
    # Given the parser of `python -m rollout`
    parser = rollout_parser()

    # Then --env may come before the command (the Makefile) or after it, and defaults to dev
    assert parser.parse_args(["--env", "prod", "destroy"]).env == "prod"
    assert parser.parse_args(["destroy", "--env", "prod"]).env == "prod"
    assert parser.parse_args(["destroy"]).env == "dev"
    assert parser.parse_args(["--env", "prod", "image", "--gpu"]).env == "prod"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", list(ROLLOUT_COMMANDS))
def test_every_makefile_call_of_rollout_parses(target: str) -> None:
    # Given the command line `make TARGET` runs, with every variable the target reads set
    variables = [
        "ENV=prod",
        "CONFIRM=0",
        "QUOTAS=ignore",
        "GPU=1",
        "PROMOTE_FROM=dev",
        "CFN_ROLE=arn:aws:iam::1:role/r",
    ]
    variables += ["IDEMPOTENCY_KEY=abc", "DATASET=data", "FORMAT=csv", "FORCE=1"]
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *variables], cwd=REPO, capture_output=True, text=True, check=True
    )
    line = next(line for line in planned.stdout.replace("\\\n", " ").splitlines() if " -m rollout " in line)

    # When rollout's parser reads it, Then it names the target's command and the environment
    args = rollout_parser().parse_args(shlex.split(line.split(" -m rollout ", 1)[1]))
    assert (args.command, args.env) == (target, "prod")

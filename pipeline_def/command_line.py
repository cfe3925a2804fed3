"""argparse for programs with commands (`python -m pipeline_def`, `python -m rollout`): an option the command does
not have is refused with that command's usage, not with the program's (argparse's own way)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


class CommandParser(argparse.ArgumentParser):
    """The parser of one command: whatever it leaves unparsed is an error in its own usage."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[Any, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


def commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[CommandParser]:
    """The program's commands, one of them required: no command, or an unknown one, prints the usage and exits 2."""
    return parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)

"""`python -m local COMMAND [options]`: the offline stack's commands (local/run.py, local/daemon.py,
local/slack_cli.py). No command prints this usage and starts nothing; `COMMAND --help` gives a command's options."""

from __future__ import annotations

import sys

USAGE = """usage: python -m local COMMAND [options]

commands:
  run     a labelled dataset in, an approved model out, on a local stack of its own (make run; several minutes)
  up      start the local stack in the background (make up)
  down    stop it, keeping its state (make down)
  serve   run the local stack in the foreground (what up starts)
  slack   show the Slack messages the local stack posted
  click   click a button of one of them, as an approver would

python -m local COMMAND --help shows the command's options."""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    # imported per command: each pulls in its own part of the stack
    if command == "run":
        from local import run

        return run.main(args)
    if command in {"up", "down", "serve"}:
        from local import daemon

        return daemon.main(command, args)
    if command in {"slack", "click"}:
        from local import slack_cli

        return slack_cli.main(command, args)
    print(f"python -m local: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

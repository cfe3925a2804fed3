"""`python -m local run|up|down`: see local/run.py and local/daemon.py."""

from __future__ import annotations

import sys

from local import daemon, run, slack_cli


def main() -> int:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("run", [])
    if command == "run":
        return run.main(args)
    if command in {"up", "down", "serve"}:
        return daemon.main(command, args)
    if command in {"slack", "click"}:
        return slack_cli.main(command, args)
    raise SystemExit(f"unknown command {command}: use run, up, down, serve, slack or click")


if __name__ == "__main__":
    raise SystemExit(main())

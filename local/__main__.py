"""`python -m local run|up|down`: see local/run.py and local/daemon.py."""

from __future__ import annotations

import sys

from local import run


def main() -> int:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("run", [])
    if command == "run":
        return run.main(args)
    raise SystemExit(f"unknown command {command}: use run")


if __name__ == "__main__":
    raise SystemExit(main())

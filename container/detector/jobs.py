"""How an entry point ends: exit code, one-line reason on stderr and in the file SageMaker reads.

Training jobs read `/opt/ml/output/failure` into FailureReason; processing jobs read `/opt/ml/output/message`
into ExitMessage. Both keep only the first kilobyte, so the reason comes first and stays on one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from detector import paths

log = logging.getLogger("detector")


class JobError(Exception):
    """A failure whose message is the whole story: no traceback is needed to understand it."""


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)


def write_failure(path: Path, reason: str) -> None:
    one_line = " ".join(reason.split())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(one_line[:1024], encoding="utf-8")
    except OSError:
        pass  # the reason still reaches stderr
    print(one_line, file=sys.stderr, flush=True)


def run(main: Callable[[], object], failure_path: Callable[[], Path]) -> None:
    """Run `main`; on failure write the reason where SageMaker reads it and exit non-zero."""
    setup_logging()
    try:
        main()
    except JobError as error:
        write_failure(failure_path(), str(error))
        sys.exit(1)
    except Exception as error:
        traceback.print_exc()
        write_failure(failure_path(), f"{type(error).__name__}: {error}")
        sys.exit(2)


def no_arguments(prog: str, doc: str | None, argv: list[str] | None = None) -> None:
    """The command line of an entry point SageMaker starts bare (`train`, `serve`): --help prints what it does
    (`doc`) and exits 0; any argument exits 2 with the usage, before any work starts."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)


def event(logger: logging.Logger, message: str, **fields: object) -> None:
    """A fixed message with its data as key=value fields."""
    logger.info("%s %s", message, " ".join(f"{key}={value}" for key, value in fields.items()))


def processing_failure() -> Path:
    return paths.root() / "output" / "message"


def cpu_threads() -> None:
    """MXNet uses half the cores on Intel unless told: set the OpenMP threads to all of them (before importing it)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

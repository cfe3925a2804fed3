"""`make up` / `make down`: the local stack as a background process, for curl, boto3 and the SDK.

`up` starts `python -m local serve` in its own session, waits until the API answers and prints where
everything is, and what of the saved state could not be restored; `down` stops it (the stack stops running jobs and
saves its state) and makes sure that no process of it, jobs included, is left behind. The stack also saves its state
every few seconds while it runs, so one that was killed comes back with nearly everything.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from local import persist
from local.stack import WORK, LocalStack

STATE = WORK / "stack.json"
LOG = WORK / "stack.log"
DEFAULT_PORT = 8787
# a log record's own attributes; the rest are the fields a call gave in `extra`
_RECORD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _Fields(logging.Formatter):
    """A fixed message, then the record's fields as JSON."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD}
        text = super().format(record)
        return f"{text} {json.dumps(fields, default=str)}" if fields else text


def _paths(work: Path) -> tuple[Path, Path]:
    """The running stack's state file (pid, endpoints) and its log: STATE and LOG for work/local."""
    return work / "stack.json", work / "stack.log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(port: int, work: Path = WORK) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    handler = logging.StreamHandler()
    handler.setFormatter(_Fields("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger("local").addHandler(handler)
    logging.getLogger("local").setLevel(logging.INFO)
    state_file, _ = _paths(work)
    stack = LocalStack(work=work, api_port=port, function_log=work / "functions.log").start()
    try:
        state = {"pid": os.getpid(), "api": stack.api.url, "slack": stack.slack.url, "endpoints": stack.endpoints}
        state["not_restored"] = [str(skipped) for skipped in stack.not_restored]
        state["unrestored"] = str(stack.unrestored) if stack.unrestored else None
        persist.write_text(state_file, json.dumps(state))  # `up` reads it while it waits
        while not stop.wait(1):
            pass
    finally:
        stack.stop()
        state_file.unlink(missing_ok=True)
    return 0


def up(port: int, timeout: float = 120, work: Path = WORK) -> int:
    state_file, log_file = _paths(work)
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if _alive(state["pid"]):
            print(f"the local stack is already up (pid {state['pid']}): {state['api']}")
            return 0
        # the last stack died without `make down` (killed, a crash): its jobs may still run
        state_file.unlink()
        _kill_orphan_jobs(work)
    work.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        process = subprocess.Popen(  # noqa: S603 (this package's own entry point)
            [sys.executable, "-m", "local", "serve", "--port", str(port), "--work", str(work)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"the local stack did not start; see {log_file}", file=sys.stderr)
            return 1
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if _healthy(state["api"]):
                _print_up(state, log_file)
                return 0
        time.sleep(0.5)
    print(f"the local stack did not answer within {timeout:.0f} s; see {log_file}", file=sys.stderr)
    return 1


def _healthy(api: str) -> bool:
    try:
        urllib.request.urlopen(f"{api}/_local/health", timeout=2).close()  # noqa: S310
    except OSError:
        return False
    return True


def _print_up(state: dict[str, Any], log: Path) -> None:
    endpoints = state["endpoints"]
    print(f"the local stack is up (pid {state['pid']}); `make down` stops it")
    print(f"  API          {state['api']}   (IAM-signed: .venv/bin/scratch-detector --local runs list)")
    for name, value in endpoints.items():
        print(f"  export {name}={value}")
    print("  export AWS_ACCESS_KEY_ID=LOCALUSER AWS_SECRET_ACCESS_KEY=local-secret AWS_DEFAULT_REGION=us-east-1")
    print(f"  logs         {log}, {log.parent / 'functions.log'}, {log.parent / 'jobs'}/*/job.log")
    if state.get("not_restored"):
        print(f"not restored from the saved state (copies of its files in {state['unrestored']}):")
        for skipped in state["not_restored"]:
            print(f"  {skipped}")


def down(timeout: float = 60, work: Path = WORK) -> int:
    state_file, _ = _paths(work)
    if not state_file.exists():
        print("the local stack is not running")
        _kill_orphan_jobs(work)
        return 0
    pid = int(json.loads(state_file.read_text())["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    state_file.unlink(missing_ok=True)
    _kill_orphan_jobs(work)
    print("the local stack is down; its state is kept in", work)
    return 0


def _kill_orphan_jobs(work: Path) -> None:
    """Jobs run in their own process groups; a stack that died without stopping them leaves pid files."""
    for pid_file in (work / "jobs").glob("*/pid"):
        for pid in pid_file.read_text().split():  # one per host of the job
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
        pid_file.unlink(missing_ok=True)


def main(command: str, argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m local {command}")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", DEFAULT_PORT)))
    parser.add_argument("--work", type=Path, default=WORK, help="where the stack keeps its state (default work/local)")
    args = parser.parse_args(argv)
    if command == "serve":
        return serve(args.port, args.work)
    if command == "up":
        return up(args.port, work=args.work)
    return down(work=args.work)

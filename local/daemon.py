"""`make up` / `make down`: the local stack as a background process, for curl, boto3 and the SDK.

`up` starts `python -m local serve` in its own session, waits until the API answers and prints where
everything is; `down` stops it (the stack stops running jobs and saves its state) and makes sure that no
process of it, jobs included, is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from local.stack import WORK, LocalStack

STATE = WORK / "stack.json"
LOG = WORK / "stack.log"
DEFAULT_PORT = 8787


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(port: int) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stack = LocalStack(api_port=port, function_log=WORK / "functions.log").start()
    try:
        state = {"pid": os.getpid(), "api": stack.api.url, "slack": stack.slack.url, "endpoints": stack.endpoints}
        STATE.write_text(json.dumps(state))
        while not stop.wait(1):
            pass
    finally:
        stack.stop()
        STATE.unlink(missing_ok=True)
    return 0


def up(port: int, timeout: float = 120) -> int:
    if STATE.exists():
        state = json.loads(STATE.read_text())
        if _alive(state["pid"]):
            print(f"the local stack is already up (pid {state['pid']}): {state['api']}")
            return 0
        STATE.unlink()
    WORK.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as log:
        process = subprocess.Popen(  # noqa: S603 (this package's own entry point)
            [sys.executable, "-m", "local", "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"the local stack did not start; see {LOG}", file=sys.stderr)
            return 1
        if STATE.exists():
            state = json.loads(STATE.read_text())
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{state['api']}/_local/health", timeout=2).close()  # noqa: S310
                _print_up(state)
                return 0
        time.sleep(0.5)
    print(f"the local stack did not answer within {timeout:.0f} s; see {LOG}", file=sys.stderr)
    return 1


def _print_up(state: dict[str, object]) -> None:
    endpoints = state["endpoints"]
    assert isinstance(endpoints, dict)
    print(f"the local stack is up (pid {state['pid']}); `make down` stops it")
    print(f"  API          {state['api']}   (IAM-signed; see the README's curl calls)")
    for name, value in endpoints.items():
        print(f"  export {name}={value}")
    print("  export AWS_ACCESS_KEY_ID=LOCALUSER AWS_SECRET_ACCESS_KEY=local-secret AWS_DEFAULT_REGION=us-east-1")
    print(f"  logs         {LOG}, {WORK / 'functions.log'}, {WORK / 'jobs'}/*/job.log")


def down(timeout: float = 60) -> int:
    if not STATE.exists():
        print("the local stack is not running")
        _kill_orphan_jobs()
        return 0
    pid = int(json.loads(STATE.read_text())["pid"])
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    STATE.unlink(missing_ok=True)
    _kill_orphan_jobs()
    print("the local stack is down; its state is kept in", WORK)
    return 0


def _kill_orphan_jobs() -> None:
    """Jobs run in their own process groups; a stack that died without stopping them leaves pid files."""
    for pid_file in (WORK / "jobs").glob("*/pid"):
        for pid in pid_file.read_text().split():  # one per host of the job
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
        pid_file.unlink(missing_ok=True)


def main(command: str, argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m local {command}")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", DEFAULT_PORT)))
    args = parser.parse_args(argv)
    if command == "serve":
        return serve(args.port)
    if command == "up":
        return up(args.port)
    return down()

"""The Slack click handler's acknowledgement time on the local stack, cold and warm (`make bench-lambda`).

Slack gives an interaction 3 seconds. A fresh interpreter that sees only what Lambda would (the built
function, the layer, the runtime's boto3) imports the click handler and answers one signed click against
the running local stack: its secret, its config parameter and its decision queue (the decision worker is
held, so that only the acknowledgement is timed). That is a cold start, less the runtime's own init. The same
process then answers more clicks: warm. Target: cold p99 under 1 s. Baseline, measured in the same run by
the caller: the runtime floor (import boto3 + one client).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import api
from local.stack import SLACK_APPROVER, SLACK_SIGNING_SECRET, LocalStack
from sam_stack import client

TARGET_COLD_P99_MS = 1000.0
FUNCTION = "SlackActionsFunction"
# in the child: the events are read first, then the import and the first click are timed together
CHILD = """
import json, sys, time
events = json.load(open(sys.argv[1]))
t = time.perf_counter()
import app
from types import SimpleNamespace
context = SimpleNamespace(function_name="bench", function_version="$LATEST", memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench", aws_request_id="bench",
    log_group_name="bench", log_stream_name="bench", get_remaining_time_in_millis=lambda: 3000)
times = []
for event in events:
    answer = app.lambda_handler(event, context)
    assert answer["statusCode"] == 200, answer
    times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
print(json.dumps(times))
"""


@dataclass(frozen=True)
class Acks:
    cold: list[float]
    warm: list[float]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def signed_click(stack: LocalStack) -> dict[str, Any]:
    """A signed Approve click of the model's message, as API Gateway passes it to the function."""
    from control_plane.approval_request import button_value  # the layer is on the path once local.stack is in

    message = {"channel": "C0BENCH", "blocks": [{"elements": [
        {"type": "button", "action_id": "approve", "value": button_value(stack.group, 1)}]}]}  # fmt: skip
    body, headers = client.signed_click(
        message,
        action="approve",
        user=SLACK_APPROVER,
        signing_secret=SLACK_SIGNING_SECRET,
        response_url=f"{stack.slack.url}actions/bench",
    )
    [route] = [r for r in api.routes(stack.template) if r.resource == "/slack/actions"]
    return api.proxy_event(route, "POST", "/slack/actions", headers=headers, body=body, caller=None)


def measure(code: Path, path: list[Path], env: dict[str, str], *, starts: int, warm_clicks: int, work: Path) -> Acks:
    stack = LocalStack(work=work, persist=False, function_log=work / "functions.log").start()
    try:
        child_env = {
            **env,
            **stack.endpoints,
            "SLACK_RESPONSE_URL_PREFIX": stack.slack.url,
            "PYTHONPATH": os.pathsep.join(str(p) for p in path),
        }
        cold: list[float] = []
        warm: list[float] = []
        with stack.dispatcher.hold("SlackDecisionsFunction"):
            for start in range(starts):
                events = work / f"clicks-{start}.json"
                events.write_text(json.dumps([signed_click(stack) for _ in range(1 + warm_clicks)]))
                done = subprocess.run(
                    [sys.executable, "-S", "-c", CHILD, str(events)],
                    cwd=code, env=child_env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"the click handler failed:\n{done.stderr[-3000:]}")
                times = json.loads(done.stdout.strip().splitlines()[-1])
                cold.append(times[0])
                warm.extend(times[1:])
        queued = stack.queued("DecisionQueue")
        expected = starts * (1 + warm_clicks)
        if queued != expected:
            raise SystemExit(f"{queued} clicks queued, {expected} answered")
        return Acks(cold, warm)
    finally:
        stack.stop()


def report(acks: Acks, floor_ms: float) -> bool:
    cold_p99 = p99(acks.cold)
    print(
        f"Slack click acknowledgement on the local stack ({len(acks.cold)} cold starts, {len(acks.warm)} warm clicks;"
        " every click verified, allow-listed and queued):"
    )
    print(
        f"  cold: p50 {statistics.median(acks.cold):.0f} ms, p99 {cold_p99:.0f} ms "
        f"({cold_p99 / floor_ms:.2f}x the runtime floor, {cold_p99 / TARGET_COLD_P99_MS:.2f}x the 1 s target)"
    )
    print(f"  warm: p50 {statistics.median(acks.warm):.1f} ms, p99 {p99(acks.warm):.1f} ms")
    ok = cold_p99 < TARGET_COLD_P99_MS
    if not ok:
        print("  OVER TARGET")
    return ok

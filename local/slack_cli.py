"""`python -m local slack` lists what the functions sent to Slack; `python -m local click approve|reject
--version N` presses that button on the model's message, signed as Slack signs an interaction."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from local.daemon import STATE
from local.stack import SLACK_APPROVER, SLACK_SIGNING_SECRET
from sam_stack.client import click, send


def _state() -> dict[str, Any]:
    if not STATE.exists():
        raise SystemExit("the local stack is not running: `make up` first")
    return dict(json.loads(STATE.read_text()))


def messages(api: str) -> list[dict[str, Any]]:
    status, listed = send("GET", f"{api}/_local/slack/messages", headers={}, data=b"")
    if status != 200:
        raise SystemExit(f"the local stack did not answer: {status}")
    return list(listed)


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "slack":
        return argparse.ArgumentParser(
            prog="python -m local slack", description="list the Slack messages the local stack posted (make up first)"
        )
    parser = argparse.ArgumentParser(
        prog="python -m local click",
        description="press Approve or Reject on a model's Slack message, signed as Slack signs it (make up first)",
    )
    parser.add_argument("action", choices=["approve", "reject"])
    parser.add_argument("--version", type=int, required=True, help="the model package version")
    parser.add_argument("--user", default=SLACK_APPROVER, help="the Slack user who clicks")
    return parser


def main(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)  # --help and a wrong option answer without a running stack
    state = _state()
    api = str(state["api"])
    if command == "slack":
        for message in messages(api):
            print(f"{message.get('channel')}  {message.get('text')}")
        return 0
    found = [m for m in messages(api) if f" v{args.version} " in m.get("text", "")]
    if not found:
        raise SystemExit(f"no Slack message for model version {args.version}: see `python -m local slack`")
    response_url = f"{state['slack']}actions/cli"
    status, answer = click(
        api,
        found[-1],
        action=args.action,
        user=args.user,
        signing_secret=SLACK_SIGNING_SECRET,
        response_url=response_url,
    )
    print(status, json.dumps(answer))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))

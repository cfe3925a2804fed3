"""Every permission is needed and every need is granted: the local stack's IAM check as a mutation test.

1. Run the integration and e2e tests once with LOCAL_IAM_USAGE set: every authorised request of a role is written down
   with the statements (and their actions) that allowed it (local/iam/usage.py).
2. For each statement of each role the tests exercise (the functions' roles, the SageMaker execution role): which
   requests it alone allowed, and which of its actions no request used.
3. Mutate: for each statement, run one test that needed it with the statement removed (LOCAL_IAM_DROP) and check that
   the test fails with AccessDenied naming an action the statement granted. With --actions, the same for each action.

    .venv/bin/python tools/iam_mutations.py [--usage work/iam/usage.jsonl] [--reuse] [--actions] [--roles A,B]

Exit 1 when a statement or an action is unused (nothing needs it: remove it), or when a mutation did not fail a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.iam import roles, usage  # noqa: E402
from local.iam.policy import as_list  # noqa: E402

TIERS = ["tests/integration", "tests/e2e"]
# Actions the tests cannot need, kept on purpose: (role glob, action) -> why. Every other unused action is a problem.
KEPT = {
    ("*", "dynamodb:GetItem"): "Powertools idempotency reads the record when a refused PutItem returns no old item",
    ("*", "dynamodb:DeleteItem"): "Powertools idempotency deletes its record when the function fails",
    (
        "*FunctionRole",
        "sqs:SendMessage",
    ): "Lambda sends a failed asynchronous event to the function's dead-letter queue",
    ("ApiFunctionRole", "sagemaker:DeleteEndpoint"): "endpoints.deploy recreates an endpoint whose creation failed",
    (
        "AutoDeployFunctionRole",
        "sagemaker:DeleteEndpoint",
    ): "endpoints.deploy recreates an endpoint whose creation failed",
    ("NotifyFunctionRole", "sagemaker:DescribePipelineExecution"): "a failed run with no failed step (its reason)",
    ("SyncDefinitionFunctionRole", "sagemaker:StopPipelineExecution"): "deleting the stack stops the runs first",
    ("SageMakerExecutionRole", "sagemaker:StopProcessingJob"): "a stop during a processing step (tests stop Train)",
    ("SageMakerExecutionRole", "s3:DeleteObject"): "SageMaker's own checkpoint sync (not emulated)",
    ("SageMakerExecutionRole", "s3:AbortMultipartUpload"): "SageMaker's own multipart uploads (not emulated)",
    ("SageMakerExecutionRole", "s3:GetBucketLocation"): "SageMaker's own S3 client (not emulated)",
}
# The roles our code acts as; FeatureStoreRole is Feature Store's own (it writes the offline store)
CHECKED = {"SageMakerExecutionRole"}


@dataclass
class Statement:
    role: str
    index: int
    body: dict[str, Any]
    sole: list[dict[str, Any]] = field(default_factory=list)  # requests only this statement allowed
    used_actions: set[str] = field(default_factory=set)
    sole_actions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @property
    def name(self) -> str:
        label = self.body.get("Sid") or ", ".join(as_list(self.body.get("Action", [])))[:60]
        return f"{self.role}#{self.index} ({label})"


def record_usage(path: Path, tests: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    env = {**os.environ, usage.USAGE_ENV: str(path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=REPO, env=env)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit("the tests fail without any mutation: fix them first")


def statements(only: set[str] | None) -> dict[tuple[str, int], Statement]:
    found = {}
    for logical_id, identity in roles.identities().items():
        checked = logical_id.endswith("FunctionRole") or logical_id in CHECKED
        if not checked or (only and logical_id not in only):
            continue
        for index, body in enumerate(identity.statements):
            found[(logical_id, index)] = Statement(logical_id, index, body)
    return found


def analyse(path: Path, found: dict[tuple[str, int], Statement]) -> None:
    for line in path.read_text().splitlines():
        used = json.loads(line)
        if not used["test"]:  # a job process of a test whose name it did not get: nothing to replay
            continue
        allowers = used["allowed_by"]
        for index, actions in allowers:
            statement = found.get((used["role"], index))
            if statement is None:
                continue
            statement.used_actions.update(actions)
            if len(allowers) == 1:
                statement.sole.append(used)
                if len(actions) == 1:
                    statement.sole_actions[actions[0]].append(used)


def _quickest(requests: list[dict[str, Any]]) -> dict[str, Any]:
    # an integration test starts in seconds, an e2e test's stack in tens of them
    return sorted(requests, key=lambda r: (not r["test"].startswith("tests/integration"), r["test"]))[0]


def mutate(role: str, drop: str, *, need: dict[str, Any], expect: set[str]) -> tuple[bool, str]:
    """Run the test that made `need` with `drop` removed; it must fail with AccessDenied naming one of `expect`."""
    env = {**os.environ, usage.DROP_ENV: f"{role}#{drop}"}
    env.pop(usage.USAGE_ENV, None)
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", need["test"]]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)  # noqa: S603
    output = done.stdout + done.stderr
    named = [a for a in expect if f"not authorized to perform: {a}" in output]
    return done.returncode != 0 and bool(named), need["test"]


def kept(role: str, action: str) -> str | None:
    return next(
        (why for (glob, kept_action), why in KEPT.items() if fnmatch(role, glob) and action == kept_action), None
    )


def report(found: dict[tuple[str, int], Statement], run_mutations: bool, actions: bool) -> int:
    problems = 0
    for statement in found.values():
        listed = set(as_list(statement.body.get("Action", [])))
        for action in sorted(listed - statement.used_actions):
            if kept(statement.role, action):
                print(f"KEPT       {statement.name}: {action}: {kept(statement.role, action)}")
        unused = sorted(a for a in listed - statement.used_actions if not kept(statement.role, a))
        if not statement.used_actions and not unused:
            continue
        if not statement.used_actions:
            print(f"UNUSED     {statement.name}: no request of the tests needed it")
            problems += 1
            continue
        if unused:
            print(f"UNUSED     {statement.name}: actions no request used: {', '.join(unused)}")
            problems += 1
        if not statement.sole:
            print(f"REDUNDANT  {statement.name}: every request it allowed, another statement allowed too")
            continue
        if run_mutations:
            problems += _mutate_statement(statement, actions)
    return problems


def _mutate_statement(statement: Statement, actions: bool) -> int:
    expect = {r["action"] for r in statement.sole}
    failed, test = mutate(statement.role, str(statement.index), need=_quickest(statement.sole), expect=expect)
    print(f"{'KILLED' if failed else 'SURVIVED':10} {statement.name} without it: {test}")
    problems = 0 if failed else 1
    if actions:
        for action, needs in sorted(statement.sole_actions.items()):
            killed, test = mutate(
                statement.role,
                f"{statement.index}:{action}",
                need=_quickest(needs),
                expect={n["action"] for n in needs},
            )
            print(f"{'KILLED' if killed else 'SURVIVED':10}   {action} of {statement.name}: {test}")
            problems += 0 if killed else 1
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--usage", type=Path, default=REPO / "work" / "iam" / "usage.jsonl")
    parser.add_argument(
        "--reuse", action="store_true", help="analyse an earlier usage file instead of running the tests"
    )
    parser.add_argument("--no-mutations", action="store_true", help="only the usage analysis")
    parser.add_argument("--actions", action="store_true", help="also remove each used action alone")
    parser.add_argument("--tests", nargs="*", default=TIERS, help="what to record the usage of (default: both tiers)")
    parser.add_argument(
        "--roles", help="comma-separated role logical ids (default: every function role and the SageMaker role)"
    )
    options = parser.parse_args()
    options.usage = options.usage.resolve()  # job processes run in folders of their own
    if not options.reuse:
        record_usage(options.usage, options.tests)
    found = statements(set(options.roles.split(",")) if options.roles else None)
    analyse(options.usage, found)
    problems = report(found, not options.no_mutations, options.actions)
    print(f"{len(found)} statements checked, {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

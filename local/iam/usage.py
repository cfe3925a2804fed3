"""What the roles' statements were used for: with LOCAL_IAM_USAGE set to a file, every authorised request is written
there (the test that made it, the identity, the action and resource, and which statements and actions allowed it),
so tools/iam_mutations.py can tell which statement each request needed and which statement no request used.

With LOCAL_IAM_DROP set to `<role logical id>#<statement index>[:<action>]`, the roles are read without that
statement (or that action of it): the mutation a test must then fail on, with AccessDenied naming it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from .policy import Request, allowing

USAGE_ENV = "LOCAL_IAM_USAGE"
DROP_ENV = "LOCAL_IAM_DROP"
_lock = threading.Lock()


def record(logical_id: str, statements: tuple[dict[str, Any], ...], request: Request) -> None:
    path = os.environ.get(USAGE_ENV)
    if not path:
        return
    line = {
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
        "role": logical_id,
        "action": request.action,
        "resource": request.resource,
        "allowed_by": [[index, actions] for index, actions in allowing(statements, request)],
    }
    with _lock, Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def dropped() -> tuple[str, int, str | None] | None:
    """The statement (or action) LOCAL_IAM_DROP removes: role logical id, index, action or None."""
    spec = os.environ.get(DROP_ENV)
    if not spec:
        return None
    role, _, rest = spec.partition("#")
    index, _, action = rest.partition(":")
    return role, int(index), action or None


def without_dropped(logical_id: str, statements: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    drop = dropped()
    if drop is None or drop[0] != logical_id:
        return statements
    _, index, action = drop
    if action is None:
        return statements[:index] + statements[index + 1 :]
    statement = dict(statements[index])
    statement["Action"] = [
        a
        for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if a != action
    ]
    return (*statements[:index], statement, *statements[index + 1 :])

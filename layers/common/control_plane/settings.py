"""Each function's environment as a pydantic model, validated once at cold start.

Logic never reads os.environ: handlers pass these values in.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Env(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    region: str = Field(alias="AWS_REGION", min_length=1)


class DeployEnv(_Env):
    """What deploying a model to the stack's endpoint needs: auto_deploy's environment, and part of the API's."""

    model_package_group: str = Field(alias="MODEL_PACKAGE_GROUP", min_length=1)
    # the stack's real-time endpoint, and the role its models run as
    endpoint_name: str = Field(alias="ENDPOINT_NAME", min_length=1)
    model_role_arn: str = Field(alias="MODEL_ROLE_ARN", min_length=1)
    config_parameter: str = Field(alias="CONFIG_PARAMETER", min_length=1)
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)


class ApiEnv(DeployEnv):
    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)
    # the deploy workflow's role: a run it starts is recorded as started from CI (empty: none)
    ci_role_arn: str | None = Field(alias="CI_ROLE_ARN", default=None)


class ScheduleEnv(_Env):
    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    skip_if_running: bool = Field(alias="SKIP_IF_RUNNING", default=True)


class SlackEnv(_Env):
    slack_secret: str = Field(alias="SLACK_SECRET", min_length=1)
    slack_channel: str = Field(alias="SLACK_CHANNEL", min_length=1)
    # tests and the local stack point Slack's Web API elsewhere; unset means https://slack.com/api/
    slack_api_url: str | None = Field(alias="SLACK_API_URL", default=None)
    # a button's reply goes only to Slack's own response URLs
    slack_response_url_prefix: str = Field(alias="SLACK_RESPONSE_URL_PREFIX", default="https://hooks.slack.com/")


class SyncEnv(SlackEnv):
    config_parameter: str = Field(alias="CONFIG_PARAMETER", min_length=1)


class NotifyEnv(SlackEnv):
    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)
    model_package_group: str = Field(alias="MODEL_PACKAGE_GROUP", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    # decisions made outside the control plane are told from its own by its records, and recorded there
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    # the REST API's base URL, for the run's link in the approval request (none: the run id alone)
    api_url: str | None = Field(alias="API_URL", default=None)


class SlackActionsEnv(SlackEnv):
    model_package_group: str = Field(alias="MODEL_PACKAGE_GROUP", min_length=1)
    config_parameter: str = Field(alias="CONFIG_PARAMETER", min_length=1)
    decision_queue_url: str = Field(alias="DECISION_QUEUE_URL", min_length=1)


class SlackDecisionsEnv(SlackEnv):
    model_package_group: str = Field(alias="MODEL_PACKAGE_GROUP", min_length=1)
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    # the decision queue's maxReceiveCount: the attempt that fails last tells the channel
    decision_attempts: int = Field(alias="DECISION_ATTEMPTS", ge=1)


E = TypeVar("E", bound=_Env)


class MissingEnvironment(RuntimeError):
    """A function deployed without the variables it needs: fail at cold start, naming them."""


def load_env(model: type[E]) -> E:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as error:
        names = ", ".join(str(e["loc"][0]) for e in error.errors(include_url=False))
        raise MissingEnvironment(f"{model.__name__}: missing or invalid environment variables: {names}") from None

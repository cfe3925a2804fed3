"""Each function's environment as a pydantic model, validated once at cold start.

Logic never reads os.environ: handlers pass these values in. A setting several functions share is declared once,
in a mixin of its own; each function's model is composed of the mixins it needs and adds its own settings.
Pydantic takes a model's fields from its last base to its first, so the mixins are listed in the reverse of the
order in which a missing variable is named at cold start.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Env(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    region: str = Field(alias="AWS_REGION", min_length=1)


class PipelineSettings(_Env):
    pipeline_name: str = Field(alias="PIPELINE_NAME", min_length=1)


class RegistrySettings(_Env):
    model_package_group: str = Field(alias="MODEL_PACKAGE_GROUP", min_length=1)


class ConfigSettings(_Env):
    config_parameter: str = Field(alias="CONFIG_PARAMETER", min_length=1)


class AuditSettings(_Env):
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=1)


class IdempotencySettings(_Env):
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)


class EndpointSettings(_Env):
    """The stack's real-time endpoint, and the role its models run as."""

    endpoint_name: str = Field(alias="ENDPOINT_NAME", min_length=1)
    model_role_arn: str = Field(alias="MODEL_ROLE_ARN", min_length=1)


class SlackSettings(_Env):
    slack_secret: str = Field(alias="SLACK_SECRET", min_length=1)
    slack_channel: str = Field(alias="SLACK_CHANNEL", min_length=1)
    # tests and the local stack point Slack's Web API elsewhere; unset means https://slack.com/api/
    slack_api_url: str | None = Field(alias="SLACK_API_URL", default=None)
    # a button's reply goes only to Slack's own response URLs
    slack_response_url_prefix: str = Field(alias="SLACK_RESPONSE_URL_PREFIX", default="https://hooks.slack.com/")


class DeployEnv(IdempotencySettings, AuditSettings, ConfigSettings, EndpointSettings, RegistrySettings):
    """What deploying a model to the stack's endpoint needs: auto_deploy's environment, and part of the API's."""


class ApiEnv(PipelineSettings, DeployEnv):
    # the deploy workflow's role: a run it starts is recorded as started from CI (empty: none)
    ci_role_arn: str | None = Field(alias="CI_ROLE_ARN", default=None)


class ScheduleEnv(IdempotencySettings, AuditSettings, ConfigSettings, PipelineSettings):
    skip_if_running: bool = Field(alias="SKIP_IF_RUNNING", default=True)


class SyncEnv(ConfigSettings, SlackSettings):
    """sync_definition's environment: the config it builds the pipeline from, the channel it alerts."""


class NotifyEnv(AuditSettings, ConfigSettings, IdempotencySettings, RegistrySettings, PipelineSettings, SlackSettings):
    """notify reads the audit trail too: decisions made outside the control plane are told from its own by its
    records, and recorded there."""

    # the REST API's base URL, for the run's link in the approval request (none: the run id alone)
    api_url: str | None = Field(alias="API_URL", default=None)


class SlackActionsEnv(ConfigSettings, RegistrySettings, SlackSettings):
    decision_queue_url: str = Field(alias="DECISION_QUEUE_URL", min_length=1)


class SlackDecisionsEnv(IdempotencySettings, AuditSettings, RegistrySettings, SlackSettings):
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

"""The Slack secret (signing secret and bot token) from Secrets Manager, cached for five minutes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from pydantic import BaseModel, ConfigDict, ValidationError

from control_plane.errors import Forbidden


class SlackSecret(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    signing_secret: str
    bot_token: str


def slack_secret(secret_id: str, max_age: int = 300) -> SlackSecret:
    """Fail closed: no secret, an unreadable one or an empty field means no Slack at all."""
    try:
        value: Any = parameters.get_secret(secret_id, transform="json", max_age=max_age)
        secret = SlackSecret.model_validate(value)
    except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError) as error:
        raise Forbidden("Slack is not configured: the secret cannot be read") from error
    except ValidationError as error:
        raise Forbidden("Slack is not configured: the secret lacks signing_secret or bot_token") from error
    if not secret.signing_secret or not secret.bot_token:
        raise Forbidden("Slack is not configured: the secret has an empty field")
    return secret

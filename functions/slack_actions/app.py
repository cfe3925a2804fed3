"""POST /slack/actions: a signed Slack button click approves or rejects a model, once."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import Clock

from control_plane import slack_approvals, slack_messages
from control_plane.aws.dynamodb import AuditTrail, Claims
from control_plane.aws.sagemaker import Registry
from control_plane.aws.secrets import slack_secret
from control_plane.aws.slack import respond
from control_plane.aws.ssm import ConfigParameter
from control_plane.errors import Forbidden
from control_plane.models import DecisionResult
from control_plane.observability import logger, metrics, tracer
from control_plane.pipeline_config import load_config
from control_plane.rest import resolver
from control_plane.settings import SlackActionsEnv, load_env
from pipeline_def.config import ConfigError

ENV = load_env(SlackActionsEnv)
app = resolver(json_bodies=False)  # Slack posts a form, which the handler reads and verifies itself
REGISTRY = Registry(ENV.model_package_group)
AUDIT = AuditTrail(ENV.audit_table)
CLAIMS = Claims(ENV.idempotency_table)
CONFIG = ConfigParameter(ENV.config_parameter)
CLOCK = Clock()


def approvers() -> list[str]:
    try:
        config, _ = load_config(CONFIG)
    except ConfigError as error:
        raise Forbidden("the approver allow-list cannot be read: the pipeline config is invalid") from error
    return list(config.slack.approvers)


@app.post("/slack/actions", summary="Slack interactivity: Approve/Reject buttons", include_in_schema=False)
@tracer.capture_method
def slack_action() -> DecisionResult:
    event = app.current_event
    body = event.decoded_body or ""
    secret = slack_secret(ENV.slack_secret)
    slack_approvals.verify(
        body,
        event.headers.get("X-Slack-Request-Timestamp"),
        event.headers.get("X-Slack-Signature"),
        secret.signing_secret,
        CLOCK,
    )
    action = slack_approvals.parse(body)
    slack_approvals.authorise(action, approvers(), ENV.model_package_group, ENV.slack_response_url_prefix)
    result = slack_approvals.act(action, CLAIMS, REGISTRY, AUDIT)
    logger.info("model decided from Slack", version=result.version, status=result.approval_status, user=action.user_id)
    metrics.add_metric(name="SlackDecisions", unit="Count", value=1)
    text, blocks = slack_messages.decided(ENV.model_package_group, result, action.user_id)
    try:
        respond(action.response_url, text, blocks)
    except (OSError, SlackClientError) as error:  # the decision stands; only the message update failed
        logger.warning("Slack message not updated", error=type(error).__name__)
    return result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""POST /slack/actions: a signed, allow-listed Slack button click is queued for the decision worker and
answered at once, so that Slack's 3 s window holds whatever happens downstream."""

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from slack_sdk.signature import Clock

from control_plane import slack_approvals
from control_plane.aws.secrets import slack_secret
from control_plane.aws.sqs import Queue
from control_plane.aws.ssm import ConfigParameter
from control_plane.errors import Forbidden
from control_plane.observability import logger, metrics, tracer
from control_plane.pipeline_config import load_config
from control_plane.rest import resolver
from control_plane.settings import SlackActionsEnv, load_env
from pipeline_def.config import ConfigError

ENV = load_env(SlackActionsEnv)
app = resolver(json_bodies=False)  # Slack posts a form, which the handler reads and verifies itself
CONFIG = ConfigParameter(ENV.config_parameter)
DECISIONS = Queue(ENV.decision_queue_url)
CLOCK = Clock()


def approvers() -> list[str]:
    try:
        config, _ = load_config(CONFIG)
    except ConfigError as error:
        raise Forbidden("the approver allow-list cannot be read: the pipeline config is invalid") from error
    return list(config.slack.approvers)


@app.post("/slack/actions", summary="Slack interactivity: Approve/Reject buttons", include_in_schema=False)
@tracer.capture_method
def slack_action() -> Response[str]:
    event = app.current_event
    body = event.decoded_body or ""
    secret = slack_secret(ENV.slack_secret)
    slack_approvals.verify(
        body,
        event.headers.get("X-Slack-Request-Timestamp"),
        event.headers.get("X-Slack-Signature"),
        signing_secret=secret.signing_secret,
        clock=CLOCK,
    )
    action = slack_approvals.parse(body)
    slack_approvals.authorise(
        action, approvers(), group=ENV.model_package_group, response_url_prefix=ENV.slack_response_url_prefix
    )
    message_id = DECISIONS.send(action.model_dump_json())
    logger.info(
        "Slack click queued",
        version=action.version,
        decision=action.decision,
        user=action.user_id,
        message_id=message_id,
        retry=event.headers.get("X-Slack-Retry-Num"),
    )
    metrics.add_metric(name="SlackClicks", unit="Count", value=1)
    # Slack's acknowledgement: an empty 200 (the worker updates the message through its response_url)
    return Response(status_code=200, content_type=content_types.TEXT_PLAIN, body="")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

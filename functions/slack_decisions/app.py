"""SQS: each Slack click the click handler queued is decided once, and its message updated; a decision that
cannot be made is told in the message's thread (at once when retrying cannot help, else at the last attempt,
after which the click goes to the dead-letter queue)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from slack_sdk.errors import SlackClientError

from control_plane import approval_request, slack_approvals, slack_messages
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.sagemaker import Registry
from control_plane.aws.slack import POST_ERRORS, respond, slack_poster
from control_plane.errors import ControlPlaneError
from control_plane.idempotency import Once
from control_plane.models import DecisionResult
from control_plane.observability import logger, metrics, tracer
from control_plane.settings import SlackDecisionsEnv, load_env
from control_plane.slack_approvals import SlackAction

ENV = load_env(SlackDecisionsEnv)
REGISTRY = Registry(ENV.model_package_group)
AUDIT = AuditTrail(ENV.audit_table)
PROCESSOR = BatchProcessor(event_type=EventType.SQS)


def decide(action: SlackAction) -> DecisionResult:
    return slack_approvals.act(action, REGISTRY, AUDIT)


DECIDE_ONCE = Once(
    decide,
    DecisionResult,
    table=ENV.idempotency_table,
    data="action",
    key=slack_approvals.CLICK_KEY,
    expires_after_seconds=slack_approvals.CLICK_SECONDS,
)


def tell_channel(action: SlackAction, reason: str) -> None:
    text, blocks = slack_messages.decision_failed(
        ENV.model_package_group, action.version, decision=action.decision, user_id=action.user_id, reason=reason
    )
    try:
        slack_poster(ENV).post(action.channel_id or ENV.slack_channel, text, blocks, thread_ts=action.message_ts)
    except POST_ERRORS as error:
        logger.error("decision failure not posted to Slack", version=action.version, error=type(error).__name__)


@tracer.capture_method
def handle(record: SQSRecord) -> None:
    action = SlackAction.model_validate_json(record.body)
    attempt = int(record.attributes.approximate_receive_count)
    try:
        result = DECIDE_ONCE(action=action)
    except ControlPlaneError as error:  # no such version, a bad state: another attempt gives the same answer
        logger.warning("Slack decision refused", version=action.version, code=error.code, reason=error.message)
        metrics.add_metric(name="SlackDecisionsRefused", unit="Count", value=1)
        tell_channel(action, error.message)
        return
    except Exception as error:
        logger.exception("Slack decision failed", version=action.version, attempt=attempt)
        if attempt >= ENV.decision_attempts:
            metrics.add_metric(name="SlackDecisionsFailed", unit="Count", value=1)
            tell_channel(
                action,
                f"{type(error).__name__} at attempt {attempt} of {ENV.decision_attempts}; "
                "the click is in the dead-letter queue",
            )
        raise
    logger.info("model decided from Slack", version=result.version, status=result.approval_status, user=action.user_id)
    metrics.add_metric(name="SlackDecisions", unit="Count", value=1)
    text, blocks = approval_request.decided(
        ENV.model_package_group, result, action.user_id, original=action.message_blocks
    )
    try:
        respond(action.response_url, text, blocks)
    except (OSError, SlackClientError) as error:  # the decision stands; only the message update failed
        logger.warning("Slack message not updated", version=result.version, error=type(error).__name__)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    DECIDE_ONCE.register(context)
    return process_partial_response(event=event, record_handler=handle, processor=PROCESSOR, context=context)

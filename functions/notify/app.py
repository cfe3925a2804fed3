"""SageMaker events to Slack: a model waiting for approval (its evidence, its picture, the buttons) or a failed run,
each posted once."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import notifications
from control_plane.aws.s3 import read_bytes, read_json
from control_plane.aws.sagemaker import Pipelines, Registry
from control_plane.aws.secrets import slack_secret
from control_plane.aws.slack import SlackPoster
from control_plane.idempotency import Once
from control_plane.notifications import Notice
from control_plane.observability import logger, metrics, tracer
from control_plane.settings import NotifyEnv, load_env

ENV = load_env(NotifyEnv)
PIPELINES = Pipelines(ENV.pipeline_name)
REGISTRY = Registry(ENV.model_package_group)
SOURCES = notifications.Sources(REGISTRY, PIPELINES, read_json, read_bytes, ENV.api_url)
# no 3 s window here (an EventBridge target): time for a picture's upload
SLACK_TIMEOUT = 10


def post(notice: Notice) -> notifications.Posted:
    poster = SlackPoster(slack_secret(ENV.slack_secret).bot_token, ENV.slack_api_url, timeout=SLACK_TIMEOUT)
    return notifications.notify(notice, SOURCES, poster, ENV.slack_channel)


POST_ONCE = Once(
    post,
    notifications.Posted,
    table=ENV.idempotency_table,
    data="notice",
    key="[kind, arn, status]",
    expires_after_seconds=7 * 24 * 3600,
)


def notice_of(event: EventBridgeModel) -> Notice | None:
    """The notice an event asks for, or None when it is not ours (the rules already filter; this is the
    second line)."""
    detail: dict[str, Any] = event.detail if isinstance(event.detail, dict) else {}
    if event.detail_type == "SageMaker Model Package State Change":
        if detail.get("ModelPackageGroupName") != ENV.model_package_group:
            return None
        if detail.get("ModelApprovalStatus") != "PendingManualApproval":
            return None
        return Notice(kind="model-pending", arn=detail["ModelPackageArn"], status="PendingManualApproval")
    if event.detail_type == "SageMaker Model Building Pipeline Execution Status Change":
        arn = str(detail.get("pipelineExecutionArn", ""))
        if detail.get("currentPipelineExecutionStatus") != "Failed":
            return None
        # SageMaker writes the pipeline's name in lower case in execution ARNs
        if arn.split("/")[1:2] != [ENV.pipeline_name.lower()]:
            return None
        return Notice(kind="run-failed", arn=arn, status="Failed")
    return None


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    POST_ONCE.register(context)
    notice = notice_of(event)
    if notice is None:
        logger.info("event ignored", detail_type=event.detail_type, event_id=event.id)
        return {"posted": False}
    posted: notifications.Posted = POST_ONCE(notice=notice)
    metrics.add_metric(name="SlackNotifications", unit="Count", value=1)
    logger.info("notification posted", kind=notice.kind, arn=notice.arn, ts=posted.ts)
    return {"posted": True, **posted.model_dump()}

"""SageMaker events to Slack: a model waiting for approval (its evidence, its picture, the buttons), a failed run, or
an approval or rejection made outside the control plane (recorded in the audit trail too); and the stack's alarms, as
the alarm topic delivers them: each posted once."""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import alarms, notifications, outside_decisions, pipeline_config
from control_plane.alarms import AlarmChange
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.s3 import read_bytes, read_json
from control_plane.aws.sagemaker import Pipelines, Registry
from control_plane.aws.slack import SlackPoster, slack_poster
from control_plane.aws.ssm import ConfigParameter
from control_plane.idempotency import Once
from control_plane.notifications import Notice
from control_plane.observability import logger, metrics, tracer
from control_plane.outside_decisions import StateChange
from control_plane.settings import NotifyEnv, load_env

ENV = load_env(NotifyEnv)
PIPELINES = Pipelines(ENV.pipeline_name)
REGISTRY = Registry(ENV.model_package_group)
AUDIT = AuditTrail(ENV.audit_table)
CONFIG = ConfigParameter(ENV.config_parameter)
SOURCES = notifications.Sources(
    registry=REGISTRY,
    pipelines=PIPELINES,
    read_report=read_json,
    read_object=read_bytes,
    api_url=ENV.api_url,
    audit=AUDIT,
    prices=lambda: pipeline_config.price_table(CONFIG),
)
# no 3 s window here (an EventBridge target): time for a picture's upload
SLACK_TIMEOUT = 10


def poster() -> SlackPoster:
    return slack_poster(ENV, timeout=SLACK_TIMEOUT)


def post(notice: Notice) -> notifications.Posted:
    return notifications.notify(notice, SOURCES, poster(), channel=ENV.slack_channel)


def announce(change: StateChange) -> notifications.Posted:
    return outside_decisions.announce(change, poster(), ENV.slack_channel)


def alarm(change: AlarmChange) -> notifications.Posted:
    return alarms.post(change, poster(), ENV.slack_channel)


POST_ONCE = Once(
    post,
    notifications.Posted,
    table=ENV.idempotency_table,
    data="notice",
    key="[kind, arn, status]",
)
ANNOUNCE_ONCE = Once(
    announce,
    notifications.Posted,
    table=ENV.idempotency_table,
    data="change",
    key="[arn, status, at]",
)
# SNS may deliver a message twice; an alarm that goes back and forth is a new change each time (its time)
ALARM_ONCE = Once(alarm, notifications.Posted, table=ENV.idempotency_table, data="change", key="[arn, state, at]")


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


def change_of(event: EventBridgeModel) -> StateChange | None:
    """The approval or rejection of one of this stack's models an event tells, if it tells one."""
    if event.detail_type != outside_decisions.PACKAGE_CHANGE or not isinstance(event.detail, dict):
        return None
    return outside_decisions.change_of(event.detail, ENV.model_package_group, event.time)


def decided(change: StateChange) -> dict[str, Any]:
    outcome = outside_decisions.handle(change, AUDIT, lambda c: ANNOUNCE_ONCE(change=c))
    if not outcome.outside:
        logger.info("decision made by the control plane", version=change.version, status=change.status)
        return {"posted": False, "outside": False}
    metrics.add_metric(name="OutsideDecisions", unit="Count", value=1)
    logger.warning(
        "decision made outside the control plane",
        version=change.version,
        status=change.status,
        actor=change.actor,
        recorded=outcome.recorded,
        ts=outcome.ts,
    )
    return {"posted": True, **outcome.model_dump()}


def alarms_posted(event: SnsModel) -> dict[str, Any]:
    """Each alarm notification of the topic, posted once; a message that is not one fails, naming its field."""
    posted = []
    for record in event.Records:
        change = alarms.of_message(str(record.Sns.Message))  # plain SnsModel: the text as SNS sent it
        posted.append(ALARM_ONCE(change=change).ts)
        metrics.add_metric(name="AlarmNotifications", unit="Count", value=1)
        logger.info("alarm posted", alarm=change.name, state=change.state, previous=change.previous)
    return {"posted": True, "ts": posted}


def event_posted(event: EventBridgeModel) -> dict[str, Any]:
    change = change_of(event)
    if change is not None:
        return decided(change)
    notice = notice_of(event)
    if notice is None:
        logger.info("event ignored", detail_type=event.detail_type, event_id=event.id)
        return {"posted": False}
    posted = POST_ONCE(notice=notice)
    metrics.add_metric(name="SlackNotifications", unit="Count", value=1)
    logger.info("notification posted", kind=notice.kind, arn=notice.arn, ts=posted.ts)
    return {"posted": True, **posted.model_dump()}


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    POST_ONCE.register(context)
    ANNOUNCE_ONCE.register(context)
    ALARM_ONCE.register(context)
    if "Records" in event:  # the alarm topic (SNS); EventBridge's events have no Records
        return alarms_posted(parse(event=event, model=SnsModel))
    return event_posted(parse(event=event, model=EventBridgeModel))

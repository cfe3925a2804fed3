"""The EventBridge schedule starts a run: once per scheduled time, skipped while a run is executing and, by the config's
`schedule.only_when_data_changed`, when the labelled data has not changed since the last successful run."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import schedule
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.s3 import ObjectListing
from control_plane.aws.sagemaker import Pipelines
from control_plane.aws.ssm import ConfigParameter
from control_plane.idempotency import Once
from control_plane.observability import logger, metrics, tracer
from control_plane.settings import ScheduleEnv, load_env

ENV = load_env(ScheduleEnv)
PIPELINES = Pipelines(ENV.pipeline_name)
AUDIT = AuditTrail(ENV.audit_table)
CONFIG = ConfigParameter(ENV.config_parameter)
LISTING = ObjectListing()
START_ONCE = Once(
    schedule.scheduled_start,
    schedule.ScheduleOutcome,
    table=ENV.idempotency_table,
    data="tick",
    key="time",
)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    START_ONCE.register(context)
    logger.append_keys(scheduled_time=event.time.isoformat(), event_id=event.id)
    outcome = START_ONCE(
        tick=schedule.ScheduledTick(time=event.time),
        pipelines=PIPELINES,
        audit=AUDIT,
        skip_if_running=ENV.skip_if_running,
        config=CONFIG,
        listing=LISTING,
    )
    if outcome.data_check == "unknown":
        metrics.add_metric(name="ScheduledDataCheckFailed", unit="Count", value=1)
        logger.warning("data check failed, run started anyway", reason=outcome.reason)
    if outcome.started:
        metrics.add_metric(name="ScheduledRunsStarted", unit="Count", value=1)
        logger.info(
            "scheduled run started", run_id=outcome.run_id, reason=outcome.reason, data_check=outcome.data_check
        )
    else:
        # the reason is also in the audit trail: GET /audit?subject=schedule#<pipeline>
        metrics.add_metric(name="ScheduledRunsSkipped", unit="Count", value=1)
        if outcome.data_check == "unchanged":
            metrics.add_metric(name="ScheduledRunsSkippedDataUnchanged", unit="Count", value=1)
        logger.info("scheduled run skipped", reason=outcome.reason, data_check=outcome.data_check)
    return outcome.model_dump(mode="json")

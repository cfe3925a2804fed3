"""The EventBridge schedule starts a run: once per scheduled time, skipped while a run is executing."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import schedule
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.sagemaker import Pipelines
from control_plane.idempotency import Once
from control_plane.observability import logger, metrics, tracer
from control_plane.settings import ScheduleEnv, load_env

ENV = load_env(ScheduleEnv)
PIPELINES = Pipelines(ENV.pipeline_name)
AUDIT = AuditTrail(ENV.audit_table)
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
    )
    if outcome.started:
        metrics.add_metric(name="ScheduledRunsStarted", unit="Count", value=1)
        logger.info("scheduled run started", run_id=outcome.run_id)
    else:
        logger.info("scheduled run skipped", reason=outcome.reason)
    return outcome.model_dump(mode="json")

"""The EventBridge schedule starts a run: once per scheduled time, skipped while a run is executing."""

from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import schedule
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.sagemaker import Pipelines
from control_plane.observability import logger, metrics, tracer
from control_plane.settings import ScheduleEnv, load_env

ENV = load_env(ScheduleEnv)
PIPELINES = Pipelines(ENV.pipeline_name)
AUDIT = AuditTrail(ENV.audit_table)
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="time", expires_after_seconds=7 * 24 * 3600)
start_once = idempotent_function(
    data_keyword_argument="tick",
    persistence_store=DynamoDBPersistenceLayer(table_name=ENV.idempotency_table),
    config=IDEMPOTENCY,
    output_serializer=PydanticSerializer(model=schedule.ScheduleOutcome),
)(schedule.scheduled_start)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    logger.append_keys(scheduled_time=event.time.isoformat(), event_id=event.id)
    outcome: schedule.ScheduleOutcome = start_once(
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

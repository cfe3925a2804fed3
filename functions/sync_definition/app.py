"""Rebuild the pipeline from the SSM config on every change of the parameter and on every deployment
(custom resource). An invalid config, or one naming a training image that is not in ECR, leaves the
pipeline as it was, logs every problem and alerts Slack; on a deployment it fails the custom resource,
so CloudFormation rolls the config back."""

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import definition_sync, slack_messages
from control_plane.aws.cloudformation import reply
from control_plane.aws.ecr import ImageRegistry
from control_plane.aws.sagemaker import PipelineDeployer
from control_plane.aws.slack import POST_ERRORS, slack_poster
from control_plane.aws.ssm import ConfigParameter
from control_plane.observability import logger, metrics, tracer
from control_plane.pipeline_config import GivenConfig
from control_plane.ports import ConfigSource
from control_plane.settings import SyncEnv, load_env
from pipeline_def.config import ConfigError

ENV = load_env(SyncEnv)
CONFIG = ConfigParameter(ENV.config_parameter)
DEPLOYER = PipelineDeployer()
IMAGES = ImageRegistry()
# what answering CloudFormation takes after the pipeline is deleted (one PUT to its response URL), with a margin
ANSWER_SECONDS = 15


def alert(error: ConfigError) -> None:
    problems = [f"{path}: {reason}" for path, reason in error.problems]
    logger.error("pipeline config invalid; pipeline left as it was", parameter=CONFIG.name, problems=problems)
    metrics.add_metric(name="InvalidConfigs", unit="Count", value=1)
    text, blocks = slack_messages.config_invalid(CONFIG.name, None, problems)
    try:
        slack_poster(ENV).post(ENV.slack_channel, text, blocks)
    except POST_ERRORS as failure:
        logger.warning("Slack alert not posted", error=type(failure).__name__)


def on_parameter_change(event_id: str) -> dict[str, Any]:
    try:
        outcome = definition_sync.sync(CONFIG, DEPLOYER, IMAGES, request_id=event_id)
    except ConfigError as error:
        alert(error)
        return {"action": "rejected", "problems": len(error.problems)}
    logger.info("pipeline synced", action=outcome.action, pipeline=outcome.pipeline, version=outcome.config_version)
    return outcome.model_dump(mode="json")


def deployed_config(properties: dict[str, Any]) -> ConfigSource:
    """The config this deployment wrote (the resource's Config property, the parameter's value), not SSM's
    current text, which a later edit may have changed."""
    if "Config" in properties:
        return GivenConfig(f"cloudformation:{properties.get('ConfigParameter', CONFIG.name)}", properties["Config"])
    return CONFIG


def on_deployment(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Always answers CloudFormation, whatever happens: a custom resource that never answers holds the stack
    for an hour. Once it has answered it never raises, so Lambda's retries of an asynchronous invocation cannot
    change the pipeline after CloudFormation has moved on (rolled back, say)."""
    physical_id = event.get("PhysicalResourceId", "pipeline-not-created")
    try:
        if event["RequestType"] == "Delete":
            # the pipeline's runs may take minutes to stop: wait while there is time left to answer
            wait = max(0.0, context.get_remaining_time_in_millis() / 1000 - ANSWER_SECONDS)
            exists = physical_id != "pipeline-not-created"
            deleted = DEPLOYER.delete(physical_id, wait_seconds=wait) if exists else False
            logger.info("pipeline deleted", pipeline=physical_id, existed=deleted)
            reply(event, "SUCCESS", physical_id)
            return {"action": "delete", "pipeline": physical_id}
        source = deployed_config(event.get("ResourceProperties", {}))
        outcome = definition_sync.sync(source, DEPLOYER, IMAGES, request_id=event["RequestId"])
    except ConfigError as error:
        alert(error)
        reply(event, "FAILED", physical_id, reason=str(error))
        return {"action": "rejected", "problems": len(error.problems)}
    except Exception as error:  # the stack must hear of any failure; the log and the metric keep it
        logger.exception("pipeline sync failed")
        metrics.add_metric(name="DeploymentSyncFailures", unit="Count", value=1)
        reply(event, "FAILED", physical_id, reason=f"{type(error).__name__}: {error}")
        return {"action": "failed", "error": type(error).__name__}
    logger.info("pipeline synced", action=outcome.action, pipeline=outcome.pipeline, version=outcome.config_version)
    reply(event, "SUCCESS", outcome.pipeline, data={"PipelineName": outcome.pipeline, "Action": outcome.action})
    return outcome.model_dump(mode="json")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "RequestType" in event:
        return on_deployment(event, context)
    change = parse(event=event, model=EventBridgeModel)
    detail = change.detail if isinstance(change.detail, dict) else {}
    logger.append_keys(event_id=change.id, parameter=detail.get("name"))
    return on_parameter_change(change.id)

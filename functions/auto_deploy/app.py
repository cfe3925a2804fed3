"""A model approved through the control plane (API or Slack) is deployed to the stack's endpoint when the config says
`on_approval: true`, once per approval: the same event delivered again deploys nothing more. An approval made in
SageMaker directly is not deployed (notify records and announces it; POST /models/{version}/deploy can deploy it)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import endpoints, outside_decisions
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.hosting import Hosting
from control_plane.aws.sagemaker import Registry
from control_plane.aws.ssm import ConfigParameter
from control_plane.idempotency import Once
from control_plane.models import EndpointState
from control_plane.observability import logger, metrics, tracer
from control_plane.pipeline_config import load_config
from control_plane.settings import DeployEnv, load_env
from pipeline_def.config import DeploymentSettings

ENV = load_env(DeployEnv)
REGISTRY = Registry(ENV.model_package_group)
AUDIT = AuditTrail(ENV.audit_table)
CONFIG = ConfigParameter(ENV.config_parameter)
HOSTING = Hosting(ENV.endpoint_name, ENV.model_role_arn)


def deploy(approval: dict[str, Any], version: int, settings: DeploymentSettings) -> EndpointState:
    command = endpoints.DeployCommand(version=version, actor="event:model-approved", source="event")
    return endpoints.deploy(command, settings, registry=REGISTRY, hosting=HOSTING, audit=AUDIT)


DEPLOY_ONCE = Once(
    deploy,
    EndpointState,
    table=ENV.idempotency_table,
    data="approval",
    # one approval: the package, and when it was approved (approving again after a rejection is another)
    key="[ModelPackageArn, ModelApprovalStatus, LastModifiedTime]",
)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    DEPLOY_ONCE.register(context)
    detail: dict[str, Any] = event.detail if isinstance(event.detail, dict) else {}
    change = outside_decisions.change_of(detail, ENV.model_package_group, event.time)
    if change is None or change.status != "Approved":
        return {"deployed": False, "reason": "not an approval of this stack's models"}
    config, _ = load_config(CONFIG)
    if not config.deployment.on_approval:
        logger.info("approval not deployed: deployment.on_approval is false", arn=change.arn)
        return {"deployed": False, "reason": "deployment.on_approval is false"}
    if not outside_decisions.made_by_control_plane(change, AUDIT):
        logger.warning("approval not deployed: made outside the control plane", arn=change.arn, actor=change.actor)
        return {"deployed": False, "reason": "approved outside the control plane"}
    state = DEPLOY_ONCE(approval=detail, version=change.version, settings=config.deployment)
    metrics.add_metric(name="ModelsDeployedOnApproval", unit="Count", value=1)
    logger.info("approved model deployed", version=change.version, endpoint=state.name)
    return {"deployed": True, **state.model_dump(mode="json")}

"""The REST API (every route but /slack/actions): parse, one use-case call, typed response."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from control_plane import api_document, endpoints, history, pipeline_config, registry, runs
from control_plane.api_document import SIGNED
from control_plane.aws.dynamodb import AuditTrail
from control_plane.aws.hosting import Hosting
from control_plane.aws.logs import epoch_events
from control_plane.aws.s3 import Presigner, read_json
from control_plane.aws.sagemaker import Pipelines, Registry
from control_plane.aws.ssm import ConfigParameter
from control_plane.idempotency import Once
from control_plane.models import (
    RUN_ID_PATTERN,
    SUBJECT_PATTERN,
    ActiveConfig,
    AuditPage,
    Decision,
    DecisionRequest,
    DecisionResult,
    EndpointState,
    ModelDetail,
    ModelPage,
    RunDetail,
    RunPage,
    RunStarted,
    RunStatus,
    RunSummary,
    StartRunRequest,
)
from control_plane.models import ApprovalStatus as ApprovalFilter
from control_plane.observability import logger, metrics, tracer
from control_plane.rest import answers, caller_of, resolver, source_of
from control_plane.settings import ApiEnv, load_env

ENV = load_env(ApiEnv)
app = resolver()

PIPELINES = Pipelines(ENV.pipeline_name)
REGISTRY = Registry(ENV.model_package_group)
AUDIT = AuditTrail(ENV.audit_table)
CONFIG = ConfigParameter(ENV.config_parameter)
HOSTING = Hosting(ENV.endpoint_name, ENV.model_role_arn)
# links a person can open for a quarter of an hour, signed with this function's role (which reads only them)
PRESIGNER = Presigner(expires_seconds=900)
RUN_READERS = runs.RunReaders(
    registry=REGISTRY, audit=AUDIT, read_report=read_json, presigner=PRESIGNER, region=ENV.region, epochs=epoch_events
)
START_ONCE = Once(
    runs.start_run,
    RunStarted,
    table=ENV.idempotency_table,
    data="command",
    # no key, no de-duplication; a key counts per caller, so two people cannot collide
    key="idempotency_key && [caller, idempotency_key]",
    payload="request",
    expires_after_seconds=24 * 3600,
)


DECISION_ANSWERS = answers(DecisionResult, 400, 401, 404, 415)
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="the execution id, the last part of its ARN")]
# SageMaker's NextToken limits (control_plane.runs)
NextToken = Annotated[
    str | None,
    Query(
        max_length=runs.NEXT_TOKEN_MAX_LENGTH,
        pattern=runs.NEXT_TOKEN_PATTERN,
        description="the next_token of the previous page",
    ),
]
# SageMaker's model package ARNs allow versions of 1 to 9 digits
Version = Annotated[int, Path(ge=1, le=999_999_999, description="the model package version")]
Limit = Annotated[int, Query(ge=1, le=100)]
Subject = Annotated[
    str,
    Query(
        pattern=SUBJECT_PATTERN,
        description="run#<run id>, model#<group>/<version>, endpoint#<name> or schedule#<pipeline>",
    ),
]
# the audit trail's own cursor (base64url of its last key)
AuditToken = Annotated[
    str | None, Query(max_length=1024, pattern=r"^[A-Za-z0-9_=-]+$", description="the next_token of the previous page")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="a retried request with the same key starts one run",
    ),
]


@app.post(
    "/runs", security=SIGNED, summary="Start a run", responses=answers(RunStarted, 400, 401, 409, 415, 422, status=201)
)
@tracer.capture_method
def start_run(
    request: Annotated[StartRunRequest, Body()], idempotency_key: IdempotencyKey = None
) -> tuple[RunStarted, int]:
    caller = caller_of(app.current_event)
    command = runs.StartCommand(
        caller=caller, idempotency_key=idempotency_key, request=request, source=source_of(caller, ENV.ci_role_arn)
    )
    started = START_ONCE(command=command, pipelines=PIPELINES, audit=AUDIT)
    metrics.add_metric(name="RunsStarted", unit="Count", value=1)
    logger.info("run started", run_id=started.run_id, caller=command.caller, source=command.source)
    return started, 201


@app.get("/runs", security=SIGNED, summary="List runs, newest first", responses=answers(RunPage, 400))
@tracer.capture_method
def list_runs(
    status: Annotated[RunStatus | None, Query()] = None, next_token: NextToken = None, limit: Limit = 20
) -> RunPage:
    return runs.list_runs(PIPELINES, status, next_token=next_token, limit=limit)


@app.get(
    "/runs/<run_id>",
    security=SIGNED,
    summary="A run, step by step: who started it, its jobs and their estimated cost, its evaluation, links to results",
    responses=answers(RunDetail, 400, 404),
)
@tracer.capture_method
def get_run(run_id: RunId) -> RunDetail:
    return runs.get_run(run_id, PIPELINES, RUN_READERS, prices=pipeline_config.price_table(CONFIG))


@app.post(
    "/runs/<run_id>/stop",
    security=SIGNED,
    summary="Stop an executing run",
    responses=answers(RunSummary, 400, 401, 404, 409),
)
@tracer.capture_method
def stop_run(run_id: RunId) -> RunSummary:
    return runs.stop_run(run_id, caller_of(app.current_event), pipelines=PIPELINES, audit=AUDIT)


@app.post(
    "/runs/<run_id>/retry",
    security=SIGNED,
    summary="Retry a failed or stopped run",
    responses=answers(RunSummary, 400, 401, 404, 409),
)
@tracer.capture_method
def retry_run(run_id: RunId) -> RunSummary:
    return runs.retry_run(run_id, caller_of(app.current_event), pipelines=PIPELINES, audit=AUDIT)


@app.get(
    "/models",
    security=SIGNED,
    summary="Model packages, newest first, with their mAP",
    responses=answers(ModelPage, 400),
)
@tracer.capture_method
def list_models(
    status: Annotated[ApprovalFilter | None, Query()] = None, next_token: NextToken = None, limit: Limit = 20
) -> ModelPage:
    return registry.list_models(REGISTRY, status, next_token=next_token, limit=limit)


@app.get(
    "/models/<version>",
    security=SIGNED,
    summary="One model package: its decisions, the run that trained it and links to its results",
    responses=answers(ModelDetail, 400, 404),
)
@tracer.capture_method
def get_model(version: Version) -> ModelDetail:
    return registry.get_model(REGISTRY, version, audit=AUDIT, pipelines=PIPELINES, presigner=PRESIGNER)


@app.get("/audit", security=SIGNED, summary="The audit trail of a run, model, endpoint or schedule, newest first",
         responses=answers(AuditPage, 400))  # fmt: skip
@tracer.capture_method
def get_audit(subject: Subject, next_token: AuditToken = None, limit: Limit = 20) -> AuditPage:
    return history.audit_page(AUDIT, subject, next_token=next_token, limit=limit)


@app.post("/models/<version>/approve", security=SIGNED, summary="Approve a model package", responses=DECISION_ANSWERS)
@tracer.capture_method
def approve(version: Version, request: Annotated[DecisionRequest, Body()]) -> DecisionResult:
    return _decide(version, "approve", request)


@app.post("/models/<version>/reject", security=SIGNED, summary="Reject a model package", responses=DECISION_ANSWERS)
@tracer.capture_method
def reject(version: Version, request: Annotated[DecisionRequest, Body()]) -> DecisionResult:
    return _decide(version, "reject", request)


def _decide(version: int, decision: Decision, request: DecisionRequest) -> DecisionResult:
    config, _ = pipeline_config.load_config(CONFIG)
    caller = caller_of(app.current_event)
    command = registry.DecideCommand(
        version=version,
        decision=decision,
        actor=caller,
        comment=request.comment,
        source=source_of(caller, ENV.ci_role_arn),
        four_eyes=config.model_registry.four_eyes,
    )
    result = registry.decide(command, REGISTRY, AUDIT)
    logger.info("model decided", version=version, decision=decision, changed=result.changed, actor=command.actor)
    return result


@app.post(
    "/models/<version>/deploy",
    security=SIGNED,
    summary="Deploy an Approved model package to the stack's real-time endpoint",
    responses=answers(
        EndpointState, 400, 401, 404, 409, 429, status=202, description="the endpoint is being created or updated"
    ),
)
@tracer.capture_method
def deploy_model(version: Version) -> tuple[EndpointState, int]:
    config, _ = pipeline_config.load_config(CONFIG)
    command = endpoints.DeployCommand(
        version=version,
        actor=caller_of(app.current_event),
        source="api",
        four_eyes=config.model_registry.four_eyes,
    )
    deployed = endpoints.deploy(command, config.deployment, registry=REGISTRY, hosting=HOSTING, audit=AUDIT)
    metrics.add_metric(name="ModelsDeployed", unit="Count", value=1)
    logger.info("model deployed", version=version, endpoint=deployed.name, status=deployed.status, actor=command.actor)
    return deployed, 202


@app.get(
    "/endpoint",
    security=SIGNED,
    summary="The stack's real-time endpoint: its state and the version it serves",
    responses=answers(EndpointState, 404),
)
@tracer.capture_method
def get_endpoint() -> EndpointState:
    return endpoints.get_endpoint(HOSTING)


@app.get(
    "/config",
    security=SIGNED,
    summary="The active pipeline config and its SSM version",
    responses=answers(ActiveConfig),
)
@tracer.capture_method
def get_config() -> ActiveConfig:
    return pipeline_config.active_config(CONFIG)


# served without authorisation (template.yaml), so that a browser or a client generator can read it
@app.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi() -> dict[str, Any]:
    return api_document.document(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    START_ONCE.register(context)
    return app.resolve(event, context)

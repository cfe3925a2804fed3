"""Handlers in-process against moto on loopback, with resources created from template.yaml."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters

from control_plane.aws import clients
from local.emulator import REGION, reset_moto
from local.functions import forget_shared_caches
from local.iam import enforce, roles
from local.iam.check import Identity
from local.quotas import Quotas
from local.service_quotas import ENDPOINT_ENV as SERVICE_QUOTAS_ENV
from local.service_quotas import ServiceQuotasApi, ServiceQuotasFront
from local.template import ACCOUNT, create_artifact_bucket, local_values, provision
from local.webhooks import WebhookRecorder, start_recorder
from pipeline_def.config import PipelineConfig
from pipeline_def.deploy import upsert
from sam_stack.template import Template

TEST_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example; events/README.md
EVENTS = Path(__file__).resolve().parents[2] / "events"
SERVICES = ("dynamodb", "ssm", "secretsmanager", "sagemaker", "s3", "events", "ecr", "sqs")


@dataclass
class Stack:
    """The emulated deployment: the template, clients on moto, and the names CloudFormation would give."""

    template: Template
    aws: dict[str, Any]
    values: dict[str, str]
    # what CloudFormation would resolve that only the emulated account knows (the secret's ARN, for the roles)
    iam_values: dict[str, str]

    @property
    def config(self) -> PipelineConfig:
        text = self.aws["ssm"].get_parameter(Name=self.values["ConfigParameter"])["Parameter"]["Value"]
        return PipelineConfig.from_yaml(text)

    def audit(self) -> list[dict[str, Any]]:
        return list(self.aws["dynamodb"].scan(TableName=self.values["AuditTable"])["Items"])


@pytest.fixture
def stack(aws_env: dict[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # Given a fresh emulated account with the template's resources and the pipeline built from its config
    reset_moto(moto_endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    clients.clear()
    template = Template.load()
    aws = {service: clients.client(service) for service in SERVICES}
    provision(template, aws)
    values = template.values(local_values())
    create_artifact_bucket(template, aws["s3"], values["ArtifactBucket"])
    iam_values = enforce.configure(aws["secretsmanager"], {"SlackSecret": values["SlackSecret"]})
    created = Stack(template, aws, values, iam_values)
    upsert(aws["sagemaker"], created.config)
    clients.clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield created
    clients.clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/26/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


@pytest.fixture
def load_function(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], ModuleType]:
    """Import functions/<folder>/app.py as a cold start would, with the template's environment; its handler runs as
    the function's role (every AWS call authorised against the role's policy as CloudFormation receives it)."""

    def load(folder: str, logical_id: str) -> ModuleType:
        for name, value in stack.template.environment(logical_id, local_values()).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        module = f"functions.{folder}.app"
        sys.modules.pop(module, None)
        role = roles.function_role(logical_id, stack.iam_values)
        with enforce.acting_as(role):  # a cold start's calls (Powertools reads its settings) are the role's too
            loaded = importlib.import_module(module)
        monkeypatch.setattr(loaded, "lambda_handler", as_role(role, loaded.lambda_handler))
        return loaded

    return load


def as_role(role: Identity, handler: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        with enforce.acting_as(role):
            forget_shared_caches()
            return handler(*args, **kwargs)

    return run


def event(folder: str, name: str, **changes: Any) -> dict[str, Any]:
    """A sample event from events/, with top-level fields replaced; `headers` are merged into the sample's,
    and the multi-value forms API Gateway also sends follow the single-value ones."""
    loaded = copy.deepcopy(json.loads((EVENTS / folder / f"{name}.json").read_text()))
    if "headers" in changes:
        changes["headers"] = {**loaded.get("headers", {}), **changes["headers"]}
        changes["multiValueHeaders"] = {k: [v] for k, v in changes["headers"].items()}
    if "queryStringParameters" in changes:
        query = changes["queryStringParameters"]
        changes["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return {**loaded, **changes}


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookRecorder]:
    """A stand-in Slack (Web API and response URLs) that records what the functions send."""
    recorder = start_recorder()
    monkeypatch.setenv("SLACK_API_URL", recorder.api_url)
    monkeypatch.setenv("SLACK_RESPONSE_URL_PREFIX", recorder.url)
    yield recorder
    recorder.stop()


def configure_slack(stack: Stack, approvers: str = "U012AB3CD", secret: dict[str, str] | None = None) -> None:
    """What an operator does after deploying: fill in the Slack secret and put approvers in the config."""
    text = stack.template.resolve(
        stack.template.resource("ConfigParameter")["Properties"]["Value"], local_values({"SlackApprovers": approvers})
    )
    stack.aws["ssm"].put_parameter(Name=stack.values["ConfigParameter"], Value=text, Type="String", Overwrite=True)
    value = secret if secret is not None else {"signing_secret": TEST_SECRET, "bot_token": "xoxb-test"}
    stack.aws["secretsmanager"].put_secret_value(SecretId=stack.values["SlackSecret"], SecretString=json.dumps(value))


@pytest.fixture
def service_quotas(
    aws_env: dict[str, str], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Quotas], Quotas]]:
    """`service_quotas(Quotas.aws_defaults())`: the emulated account's Service Quotas (local/service_quotas.py) with
    the quotas a test gives, reached by boto3 as the local stack's is."""
    fronts: list[ServiceQuotasFront] = []

    def serve(quotas: Quotas) -> Quotas:
        front = ServiceQuotasFront(ServiceQuotasApi(quotas, region=REGION, account=ACCOUNT), moto_endpoint).start()
        fronts.append(front)
        monkeypatch.setenv(SERVICE_QUOTAS_ENV, front.endpoint)
        return quotas

    yield serve
    for front in fronts:
        front.stop()

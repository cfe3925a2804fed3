"""The whole product on one machine: emulated AWS, the pipeline executor, the functions behind the REST API
and the event rules, and a stand-in Slack. Everything is created from template.yaml.

    moto (S3, SSM, DynamoDB, Secrets Manager, EventBridge, SQS, SageMaker's registry)  AWS_ENDPOINT_URL
    local.executor.server (pipeline executions and their jobs; the rest goes to moto) AWS_ENDPOINT_URL_SAGEMAKER
    local.hosting (models, endpoint configs, endpoints: the image's serve; InvokeEndpoint) ..._SAGEMAKER_RUNTIME
    local.featurestore (PutRecord, GetRecord; offline-store parquet)   AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME
    local.service_quotas (SageMaker's instance quotas, enforced by local.quotas)   AWS_ENDPOINT_URL_SERVICE_QUOTAS
    local.api (template.yaml's routes -> the functions), local.dispatch (rules -> SQS -> the functions)
    local.webhooks (Slack's Web API and response URLs; CloudFormation's response URL)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local import changes, constraints, persist
from local.api import ApiServer
from local.dispatch import Dispatcher
from local.emulator import REGION, aws_environment, reset_moto, start_moto
from local.executor.engine import TERMINAL, Executor
from local.executor.jobs import JobRunner
from local.executor.server import ENDPOINT_ENV as SAGEMAKER_ENV
from local.executor.server import SageMakerApi, sagemaker_front
from local.executor.state import load_state, save_state
from local.featurestore import ENDPOINT_ENV as FEATURESTORE_ENV
from local.featurestore import FeatureStore, FeatureStoreServer
from local.functions import Functions
from local.hosting import RUNTIME_ENV, Hosting, RuntimeServer
from local.iam import enforce, users
from local.persist import Saver, Skipped
from local.quotas import Quotas
from local.service_quotas import ENDPOINT_ENV as QUOTAS_ENV
from local.service_quotas import ServiceQuotasApi, ServiceQuotasFront
from local.snapshot import Snapshot
from local.ssm_events import ENDPOINT_ENV as SSM_ENV
from local.ssm_events import ssm_front
from local.template import (
    ACCOUNT,
    LOCAL_VALUES,
    create_artifact_bucket,
    feature_group_request,
    local_values,
    provision,
)
from local.webhooks import WebhookRecorder, start_recorder
from sam_stack.template import Template

LOG = logging.getLogger("local.stack")
REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "work" / "local"
# The feature group the template creates when FeatureGroupName is left empty, with the template's schema
FEATURE_GROUP = str(feature_group_request(Template.load())["FeatureGroupName"])
# The local stack's Slack app: a documented throwaway signing secret, and the one approver
SLACK_SIGNING_SECRET = "local-stack-signing-secret-not-for-production"  # noqa: S105 (documented, local only)
SLACK_APPROVER = "ULOCALAPPROVER"
# The API's callers (local/iam/users.py): the admin carries every duty policy, the others one each
LOCAL_USER_KEY = users.ADMIN.access_key
LOCAL_RUNNER_KEY = users.RUNNER.access_key
LOCAL_APPROVER_KEY = users.APPROVER.access_key
LOCAL_DEPLOYER_KEY = users.DEPLOYER.access_key
LOCAL_READER_KEY = users.READER.access_key
# how often a persisting stack saves what changed: a killed stack loses at most about this much
SAVE_PERIOD = 2.0


@dataclass
class LocalStack:
    work: Path = WORK
    api_port: int = 0
    on_job_line: Any = None
    # keep state across restarts in work/ (moto holds everything in memory); tests start fresh
    persist: bool = True
    # where the functions' log lines (Powertools JSON, EMF metrics) go; None leaves them on stdout
    function_log: Path | None = None
    # the account's SageMaker instance quotas: generous, or Quotas.aws_defaults() (a fresh account) with its own values
    quotas: Quotas = field(default_factory=Quotas.generous)
    # seconds PutRecord's data takes to reach the offline store; None: LOCAL_OFFLINE_STORE_DELAY_SECONDS, or 3
    offline_store_delay: float | None = None
    template: Template = field(default_factory=Template.load)
    parts: list[Any] = field(default_factory=list)
    # what the restore could not bring back, and where copies of the saved files that held it are kept
    not_restored: list[Skipped] = field(default_factory=list)
    unrestored: Path | None = None

    def start(self) -> LocalStack:
        # the stack points this process's boto3 at itself; stop() gives the process its environment back
        self._environ = dict(os.environ)
        # every request the stack's processes make is checked as AWS checks it (its job processes' too)
        constraints.install()
        # and authorised against the caller's role, as IAM authorises it (local/iam)
        enforce.install()
        self.work.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        if self.function_log is not None:
            # Powertools writes to the stdout it finds when the functions are first imported, after this
            self._log = self.function_log.open("a", buffering=1)
            self._stdout = sys.stdout
            sys.stdout = self._log
            warnings.filterwarnings("ignore", message="No application metrics to publish")
        environment = {**self._start_moto(), "AWS_REGION": REGION}
        self._provision()
        self._start_services(environment)
        self._start_functions()
        # what a deployment does last: the custom resource builds the pipeline from the config
        self.deploy_definition()
        if self.persist:
            self._keep_unrestored()
            self._saved_changes = -1
            self._saving = threading.Lock()
            self.saver = Saver(self.save, period=SAVE_PERIOD).start()
        return self

    def _start_moto(self) -> dict[str, str]:
        """moto, empty, with this process's boto3 pointed at it; the environment that reaches it."""
        moto, self.moto_endpoint = start_moto()
        changes.install()
        self.parts.append(moto)
        # a stack started again in one process starts empty, as a new process would
        reset_moto(self.moto_endpoint)
        environment = aws_environment(self.moto_endpoint)
        os.environ.update(environment)
        os.environ.pop("AWS_PROFILE", None)
        os.environ["AWS_REGION"] = REGION
        self.aws = {
            name: _client(name, self.moto_endpoint)
            for name in ("s3", "sagemaker", "events", "sqs", "ssm", "secretsmanager", "dynamodb", "ecr")
        }
        return environment

    def _provision(self) -> None:
        """The labelling team's data side (the bucket, the feature group), then the template's resources."""
        self.values = self.template.values(local_values())
        self.bucket = self.values["ArtifactBucket"]
        create_artifact_bucket(self.template, self.aws["s3"], self.bucket)
        self.offline_store_uri = self._feature_group()
        self.overrides = {"OfflineStoreUri": self.offline_store_uri, "SlackApprovers": SLACK_APPROVER}

        # the template's resources, and the operator's part: the Slack secret filled in
        provision(self.template, self.aws, self.overrides)
        self.aws["secretsmanager"].put_secret_value(
            SecretId=self.values["SlackSecret"],
            SecretString=json.dumps({"signing_secret": SLACK_SIGNING_SECRET, "bot_token": "xoxb-local"}),
        )
        enforce.configure(self.aws["secretsmanager"], {"SlackSecret": self.values["SlackSecret"]})
        self.group = self.template.resolve(
            self.template.resource("ModelPackageGroup")["Properties"]["ModelPackageGroupName"], self.values
        )
        self.snapshot = Snapshot(self.work / "snapshot", self.aws, values=self.values, group=self.group)
        if self.persist:
            restored: list[list[Skipped] | None] = []
            persist.attempt("the saved state", lambda: restored.append(self.snapshot.restore()), self.not_restored)
            if restored and restored[0] is not None:
                self.not_restored += restored[0]
                LOG.info("state restored", extra={"folder": str(self.snapshot.folder), "skipped": len(restored[0])})

    def _start_services(self, environment: dict[str, str]) -> None:
        """What moto lacks: pipeline executions, hosting, the feature-store runtime; and Slack."""
        runner = JobRunner(self.aws["s3"], environment, logs=_client("logs", self.moto_endpoint))
        self.executor = Executor(
            self.aws["sagemaker"],
            self.aws["events"],
            self.aws["s3"],
            runner=runner,
            work=self.work,
            on_line=self.on_job_line,
        )
        if self.persist:
            self.not_restored += load_state(self.executor, self.work / "executions.json")
        # hosting: an endpoint is the image's serve on a loopback port
        self.hosting = Hosting(
            self.aws["sagemaker"], self.aws["s3"], self.work, environment=environment, region=REGION, account=ACCOUNT
        )
        if self.persist:
            restore_endpoints = partial(self.hosting.restore, self.work / "endpoints.json")
            persist.attempt("the saved endpoints", restore_endpoints, self.not_restored)
        sagemaker = sagemaker_front(SageMakerApi(self.executor), self.moto_endpoint, self.hosting).start()
        runtime = RuntimeServer(self.hosting).start()
        ssm = ssm_front(self.moto_endpoint, self.aws["events"]).start()
        # records on their way to the offline store are journalled: a killed stack writes them when it starts again
        journal = self.work / "offline-store-pending.jsonl" if self.persist else None
        self.featurestore = FeatureStore(
            self.moto_endpoint, REGION, offline_delay=self.offline_store_delay, journal=journal
        )
        self.featurestore.replay()
        featurestore = FeatureStoreServer(self.featurestore).start()
        self.quotas.watch(self.executor, self.hosting)
        service_quotas = ServiceQuotasFront(
            ServiceQuotasApi(self.quotas, region=REGION, account=ACCOUNT), self.moto_endpoint
        ).start()
        self.slack: WebhookRecorder = start_recorder()
        self.parts += [sagemaker, ssm, featurestore, self.slack, runtime, self.hosting, service_quotas]
        self.endpoints = {
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            SAGEMAKER_ENV: sagemaker.endpoint,
            RUNTIME_ENV: runtime.endpoint,
            SSM_ENV: ssm.endpoint,
            FEATURESTORE_ENV: featurestore.endpoint,
            QUOTAS_ENV: service_quotas.endpoint,
        }
        os.environ.update(self.endpoints)

    def _start_functions(self) -> None:
        """The functions, with the template's environment, behind the API and the rules."""
        self.functions = Functions(self.template)
        os.environ.update(self.functions.environment(self.overrides))
        os.environ.update({"SLACK_API_URL": self.slack.api_url, "SLACK_RESPONSE_URL_PREFIX": self.slack.url})
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        self.dispatcher = Dispatcher(
            self.template, self.functions, events=self.aws["events"], sqs=self.aws["sqs"], overrides=self.overrides
        )
        self.dispatcher.create_rules()
        self.parts.append(self.dispatcher.start())
        slack_messages = {
            "/_local/slack/messages": lambda: [p.message for p in self.slack.posts("/api/chat.postMessage")]
        }
        self.api = ApiServer(self.template, self.functions, port=self.api_port, local_routes=slack_messages).start()
        self.parts.append(self.api)
        os.environ["API_URL"] = self.api.url  # the run links in Slack messages: this API, not API Gateway's

    def _keep_unrestored(self) -> None:
        """The saved files that held what did not come back, copied aside before the first save replaces them."""
        if not self.not_restored:
            return
        saved = [self.snapshot.state_file, self.snapshot.mirror.index_file]
        saved += [self.work / "executions.json", self.work / "endpoints.json"]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.unrestored = persist.keep(saved, self.work / "unrestored" / stamp)
        LOG.warning("state partly restored", extra={"skipped": len(self.not_restored), "kept": str(self.unrestored)})

    def save(self) -> None:
        """What a restart brings back: the saver calls this every SAVE_PERIOD, stop() once more at the end. The
        emulated services are copied only after a request that may have changed them (local/changes.py)."""
        with self._saving:
            save_state(self.executor, self.work / "executions.json")
            persist.replace(self.work / "endpoints.json", self.hosting.save, if_changed=True)
            seen = changes.count()
            if seen == self._saved_changes:
                return
            # the first save lists every bucket: it reconciles the mirror with what the restore brought back
            changed = changes.take_objects() if self._saved_changes >= 0 else None
            try:
                self.snapshot.save(changed)
            except Exception:
                changes.give_back(changed)
                raise
            self._saved_changes = seen

    def stop(self) -> None:
        if self.persist:
            self.saver.stop()
        running = [e for e in self.executor.executions.values() if e.status == "Executing"]
        for execution in running:
            self.executor.stop(execution.arn)
        deadline = time.monotonic() + 30
        while any(e.status not in TERMINAL for e in running) and time.monotonic() < deadline:
            time.sleep(0.2)
        # records on their way to the offline store go into the buckets the last save keeps
        self.featurestore.flush()
        if self.persist:
            self.save()
        for part in reversed(self.parts):
            part.stop()
        self.parts.clear()
        if self.function_log is not None:
            sys.stdout = self._stdout
            self._log.close()
        os.environ.clear()
        os.environ.update(self._environ)
        self.functions.forget_clients()

    def _feature_group(self) -> str:
        """The template's feature group, and the offline-store prefix the pipeline reads."""
        self.aws["sagemaker"].create_feature_group(**feature_group_request(self.template))
        described = self.aws["sagemaker"].describe_feature_group(FeatureGroupName=FEATURE_GROUP)
        resolved = str(described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"])
        # `<name>-<creation time>/data`. A deployment leaves OfflineStoreUri empty and the pipeline reads what
        # DescribeFeatureGroup resolves; the local stack creates its group again at every start, so it gives the
        # prefix that covers every creation (S3 prefixes are plain key prefixes), and restarts keep their data
        return resolved.rsplit("-", 1)[0] + "-"

    def deploy_definition(self) -> dict[str, Any]:
        """The PipelineDefinition custom resource's Create, as CloudFormation sends it."""
        stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{LOCAL_VALUES['AWS::StackName']}/local"
        event = {
            "RequestType": "Create",
            "ResponseURL": f"{self.slack.url}cloudformation/{uuid.uuid4()}",
            "StackId": stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "PipelineDefinition",
            "ResourceType": "Custom::PipelineDefinition",
            # what CloudFormation passes: the parameter's name and the value this deployment gave it
            "ResourceProperties": {
                "ConfigParameter": self.values["ConfigParameter"],
                "Config": self.aws["ssm"].get_parameter(Name=self.values["ConfigParameter"])["Parameter"]["Value"],
            },
        }
        result: dict[str, Any] = self.functions.invoke("SyncDefinitionFunction", event)
        return result

    def queue_url(self, logical_id: str) -> str:
        return str(self.aws["sqs"].get_queue_url(QueueName=self.values[f"{logical_id}.QueueName"])["QueueUrl"])

    def queued(self, logical_id: str) -> int:
        """Messages waiting on a template queue, in flight ones included."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.aws["sqs"].get_queue_attributes(QueueUrl=self.queue_url(logical_id), AttributeNames=names)
        return sum(int(found["Attributes"][name]) for name in names)

    def audit(self) -> list[dict[str, Any]]:
        return list(self.aws["dynamodb"].scan(TableName=self.values["AuditTable"])["Items"])

    def client(self, service: str) -> Any:
        """A client as the product's code gets one: through the endpoint variables, so SSM changes raise
        their events and SageMaker calls reach the executor."""
        return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


def _client(service: str, endpoint: str) -> Any:
    # the stack's own clients talk to moto directly, not through the executor's front
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=Config(retries={"mode": "standard"}))  # type: ignore[call-overload]

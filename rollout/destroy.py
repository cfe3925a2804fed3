"""`make destroy ENV=...`: the stack and everything it leaves behind, found by the names template.yaml gives.

CloudFormation cannot delete a versioned bucket that holds objects, an ECR repository that holds images or a
model package group that holds packages, and keeps what the template retains (the bucket, the audit table).
So this empties those first, deletes the stack, then deletes whatever is still there. Every name comes from
template.yaml resolved for the stack, so a second run (or a run after a half-finished one) finds the same
things and deletes only what is left: nothing, the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from botocore.exceptions import ClientError, WaiterError

from rollout.environments import Environment, RolloutError
from rollout.stack import describe, outputs
from sam_stack.template import Template

MISSING = {"NoSuchBucket", "RepositoryNotFoundException", "ParameterNotFound", "ResourceNotFoundException"}
# SageMaker says "does not exist" with ValidationException (or ResourceNotFound); only its calls read it so
SAGEMAKER_MISSING = {"ValidationException", "ResourceNotFound"}
SAM_MANAGED_STACK = "aws-sam-cli-managed-default"  # where `resolve_s3` keeps deployment packages


@dataclass(frozen=True)
class Names:
    stack: str
    bucket: str
    repository: str
    pipeline: str
    group: str
    parameter: str
    tables: tuple[str, ...]
    log_groups: tuple[str, ...]
    s3_prefix: str

    @classmethod
    def of(cls, env: Environment, account: str, region: str, *, template: Template | None = None) -> Names:
        """The names the template gives in the deployed stack: from its stack name, account and region (and the
        parameters' defaults). A name that needs anything else is an error naming it, never a guess."""
        template = template or Template.load()
        deployed = {"AWS::StackName": env.stack_name, "AWS::AccountId": account, "AWS::Region": region}

        def name(logical_id: str, prop: str) -> str:
            return str(template.resolve(template.resource(logical_id)["Properties"][prop], deployed))

        return cls(
            stack=env.stack_name,
            bucket=name("ArtifactBucket", "BucketName"),
            repository=name("ImageRepository", "RepositoryName"),
            pipeline=env.stack_name,
            group=name("ModelPackageGroup", "ModelPackageGroupName"),
            parameter=name("ConfigParameter", "Name"),
            tables=tuple(name(t, "TableName") for t in template.of_type("AWS::DynamoDB::Table")),
            log_groups=tuple(name(g, "LogGroupName") for g in template.of_type("AWS::Logs::LogGroup")),
            s3_prefix=env.s3_prefix,
        )


@dataclass
class Destroyer:
    names: Names
    session: boto3.Session
    deleted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.aws: dict[str, Any] = {
            s: self.session.client(s)
            for s in ("cloudformation", "s3", "ecr", "sagemaker", "ssm", "logs", "dynamodb", "secretsmanager")
        }

    # ---------- what is there ----------

    def inventory(self) -> list[str]:
        """Everything this would delete, as `kind: name` lines."""
        n, found = self.names, []
        if describe(self.aws["cloudformation"], n.stack):
            found.append(f"stack: {n.stack}")
            found += [f"secret: {arn}" for arn in self._stack_resources("AWS::SecretsManager::Secret")]
        found += [f"image: {n.repository}@{i.get('imageTag', i['imageDigest'])}" for i in self._images()]
        found += [f"model package: {arn}" for arn in self._packages()]
        found += [f"{kind}: {name}" for kind, name in self._hosting()]
        if self._exists(lambda: self.aws["sagemaker"].describe_pipeline(PipelineName=n.pipeline)):
            found.append(f"pipeline: {n.pipeline} ({sum(1 for _ in self._executions())} executions)")
        if self._exists(lambda: self.aws["sagemaker"].describe_model_package_group(ModelPackageGroupName=n.group)):
            found.append(f"model package group: {n.group}")
        if self._exists(lambda: self.aws["ecr"].describe_repositories(repositoryNames=[n.repository])):
            found.append(f"ECR repository: {n.repository}")
        if self._exists(lambda: self.aws["ssm"].get_parameter(Name=n.parameter)):
            found.append(f"SSM parameter: {n.parameter}")
        versions = sum(1 for _ in self._versions(n.bucket))
        if self._exists(lambda: self.aws["s3"].head_bucket(Bucket=n.bucket)):
            found.append(f"bucket: {n.bucket} ({versions} object versions, artefacts of every run)")
        found += [
            f"table: {t}" for t in n.tables if self._exists(partial(self.aws["dynamodb"].describe_table, TableName=t))
        ]
        found += [f"log group: {g}" for g in self._log_groups()]
        deployment = self._deployment_bucket()
        if deployment:
            packages = sum(1 for _ in self._versions(deployment, f"{n.s3_prefix}/"))
            if packages:
                found.append(f"deployment packages: s3://{deployment}/{n.s3_prefix}/ ({packages} object versions)")
        return found

    # ---------- deleting ----------

    def run(self) -> list[str]:
        """Delete it all, in the order that lets each deletion succeed; every thing deleted, as `kind: name`."""
        # runs in flight would keep writing to the bucket
        self._stop_executions()
        # what CloudFormation cannot delete while it is full, and the endpoint the API made (billed while it stands)
        self._empty_what_holds_the_stack()
        # the stack: functions, API, roles, queue, secret, and through its custom resource the pipeline
        self._delete_stack()
        # what the stack retains or could not delete
        self._delete_what_is_left()
        return self.deleted

    def _stop_executions(self) -> None:
        sm = self.aws["sagemaker"]
        for arn in self._executions(("Executing",)):
            if self._gone(partial(sm.stop_pipeline_execution, PipelineExecutionArn=arn), SAGEMAKER_MISSING):
                self.deleted.append(f"stopped execution: {arn}")

    def _empty_what_holds_the_stack(self) -> None:
        n, sm = self.names, self.aws["sagemaker"]
        images = list(self._images())
        for start in range(0, len(images), 100):
            self.aws["ecr"].batch_delete_image(repositoryName=n.repository, imageIds=images[start : start + 100])
        self.deleted += [f"image: {n.repository}@{i.get('imageTag', i['imageDigest'])}" for i in images]
        for arn in list(self._packages()):
            if self._gone(partial(sm.delete_model_package, ModelPackageName=arn), SAGEMAKER_MISSING):
                self.deleted.append(f"model package: {arn}")
        # the endpoint POST /models/{version}/deploy made, its configs and models
        deletions = {
            "endpoint": lambda name: sm.delete_endpoint(EndpointName=name),
            "endpoint config": lambda name: sm.delete_endpoint_config(EndpointConfigName=name),
            "model": lambda name: sm.delete_model(ModelName=name),
        }
        for kind, name in list(self._hosting()):
            self._delete(kind, name, partial(deletions[kind], name), missing=SAGEMAKER_MISSING)

    def _delete_stack(self) -> None:
        n = self.names
        if not describe(self.aws["cloudformation"], n.stack):
            return
        secrets = self._stack_resources("AWS::SecretsManager::Secret")
        self.aws["cloudformation"].delete_stack(StackName=n.stack)
        try:
            self.aws["cloudformation"].get_waiter("stack_delete_complete").wait(
                StackName=n.stack, WaiterConfig={"Delay": 10, "MaxAttempts": 180}
            )
        except WaiterError as error:
            raise RolloutError(
                f"stack {n.stack} was not deleted ({error}); see its events in the CloudFormation console, "
                "then run make destroy again"
            ) from error
        self.deleted.append(f"stack: {n.stack}")
        # CloudFormation only schedules a secret's deletion, which would hold its name for up to 30 days
        for secret in secrets:
            self._delete(
                "secret",
                secret,
                partial(self.aws["secretsmanager"].delete_secret, SecretId=secret, ForceDeleteWithoutRecovery=True),
            )

    def _delete_what_is_left(self) -> None:
        n, sm = self.names, self.aws["sagemaker"]
        self._delete(
            "pipeline",
            n.pipeline,
            lambda: sm.delete_pipeline(PipelineName=n.pipeline, ClientRequestToken=uuid.uuid4().hex),
            missing=SAGEMAKER_MISSING,
        )
        self._delete(
            "model package group",
            n.group,
            lambda: sm.delete_model_package_group(ModelPackageGroupName=n.group),
            missing=SAGEMAKER_MISSING,
        )
        self._delete(
            "ECR repository",
            n.repository,
            lambda: self.aws["ecr"].delete_repository(repositoryName=n.repository, force=True),
        )
        self._delete("SSM parameter", n.parameter, lambda: self.aws["ssm"].delete_parameter(Name=n.parameter))
        emptied = self._empty(n.bucket)
        self._delete(
            "bucket", f"{n.bucket} ({emptied} object versions)", lambda: self.aws["s3"].delete_bucket(Bucket=n.bucket)
        )
        for table in n.tables:
            self._delete("table", table, partial(self.aws["dynamodb"].delete_table, TableName=table))
        for group in self._log_groups():
            self._delete("log group", group, partial(self.aws["logs"].delete_log_group, logGroupName=group))
        deployment = self._deployment_bucket()
        if deployment and (count := self._empty(deployment, f"{n.s3_prefix}/")):
            self.deleted.append(f"deployment packages: s3://{deployment}/{n.s3_prefix}/ ({count} object versions)")

    # ---------- helpers ----------

    def _hosting(self) -> Iterator[tuple[str, str]]:
        """The stack's endpoint, then the endpoint configs and models named after it (`<stack>-v<version>-...`)."""
        sm, prefix = self.aws["sagemaker"], f"{self.names.stack}-v"
        if self._exists(lambda: sm.describe_endpoint(EndpointName=self.names.stack)):
            yield "endpoint", self.names.stack
        for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix):
            for config in page["EndpointConfigs"]:
                if config["EndpointConfigName"].startswith(prefix):
                    yield "endpoint config", config["EndpointConfigName"]
        for page in sm.get_paginator("list_models").paginate(NameContains=prefix):
            for model in page["Models"]:
                if model["ModelName"].startswith(prefix):
                    yield "model", model["ModelName"]

    def _delete(self, kind: str, name: str, call: Callable[[], Any], *, missing: set[str] = MISSING) -> None:
        if self._gone(call, missing):
            self.deleted.append(f"{kind}: {name}")

    @staticmethod
    def _gone(call: Callable[[], Any], missing: set[str] = MISSING) -> bool:
        """True when the call deleted something; False when there was nothing to delete."""
        try:
            call()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in missing:
                return False
            raise
        return True

    def _exists(self, call: Callable[[], Any]) -> bool:
        return self._gone(call, MISSING | SAGEMAKER_MISSING | {"404"})

    def _stack_resources(self, kind: str) -> list[str]:
        pages = self.aws["cloudformation"].get_paginator("list_stack_resources").paginate(StackName=self.names.stack)
        return [
            r["PhysicalResourceId"]
            for page in pages
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == kind
        ]

    def _images(self) -> Iterator[dict[str, str]]:
        pages = self.aws["ecr"].get_paginator("list_images").paginate(repositoryName=self.names.repository)
        try:
            for page in pages:
                yield from page["imageIds"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "RepositoryNotFoundException":
                raise

    def _packages(self) -> Iterator[str]:
        pages = (
            self.aws["sagemaker"].get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.names.group)
        )
        for page in pages:
            yield from (p["ModelPackageArn"] for p in page["ModelPackageSummaryList"])

    def _executions(self, statuses: tuple[str, ...] | None = None) -> Iterator[str]:
        pages = (
            self.aws["sagemaker"].get_paginator("list_pipeline_executions").paginate(PipelineName=self.names.pipeline)
        )
        try:
            for page in pages:
                for summary in page["PipelineExecutionSummaries"]:
                    if statuses is None or summary.get("PipelineExecutionStatus") in statuses:
                        yield summary["PipelineExecutionArn"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in SAGEMAKER_MISSING:
                raise

    def _log_groups(self) -> list[str]:
        prefixes = {g.rsplit("/", 1)[0] + "/" for g in self.names.log_groups}
        found: list[str] = []
        for prefix in sorted(prefixes):
            pages = self.aws["logs"].get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
            found += [g["logGroupName"] for page in pages for g in page["logGroups"]]
        return sorted(set(found))

    def _versions(self, bucket: str, prefix: str = "") -> Iterator[dict[str, str]]:
        pages = self.aws["s3"].get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    yield {"Key": item["Key"], "VersionId": item["VersionId"]}
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise

    def _empty(self, bucket: str, prefix: str = "") -> int:
        """Delete every version and delete marker (under prefix); the number deleted."""
        versions = list(self._versions(bucket, prefix))
        for start in range(0, len(versions), 1000):
            self.aws["s3"].delete_objects(
                Bucket=bucket, Delete={"Objects": versions[start : start + 1000], "Quiet": True}
            )
        return len(versions)

    def _deployment_bucket(self) -> str | None:
        return outputs(self.aws["cloudformation"], SAM_MANAGED_STACK).get("SourceBucket")

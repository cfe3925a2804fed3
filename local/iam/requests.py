"""The one table from each AWS operation the product calls to what IAM authorises it on: the actions (an operation can
need several: CreateModel passes a role, a tagged create also tags), the resource ARN each acts on, built from the
request, and the request's condition keys. tests/unit/test_iam_requests.py checks every ARN against the resource
types AWS's service authorization reference gives the action (local.iam.catalog).

An operation that is not here cannot be authorised, so it is refused loudly: a new call needs its row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .policy import Request

Params = dict[str, Any]
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Where:
    """The account and region a request goes to, and how to find a secret's ARN from its name (Secrets Manager
    authorises on the full ARN, random suffix included)."""

    account: str
    region: str
    partition: str = "aws"
    secret_arn: Callable[[str], str] = lambda name: name

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region, account = (self.region, self.account) if regional else ("", "")
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"


Build = Callable[[Params, Where], Iterator[Request]]
UnknownOperation = KeyError


def _name_or_arn(value: str, where: Where, kind: str) -> str:
    return value if value.startswith("arn:") else where.arn("sagemaker", f"{kind}/{value}")


def sagemaker(kind: str, member: str, *, action: str | None = None) -> Callable[[str], Build]:
    """A SageMaker operation on one resource named (or ARN'd) by `member`."""

    def for_operation(operation: str) -> Build:
        def build(params: Params, where: Where) -> Iterator[Request]:
            arn = _name_or_arn(str(params[member]), where, kind)
            yield Request(f"sagemaker:{action or operation}", arn)
            yield from _tags(params, arn)

        return build

    return for_operation


def _tags(params: Params, arn: str) -> Iterator[Request]:
    # creating with tags also tags: AWS asks for AddTags on the new resource
    if params.get("Tags"):
        yield Request("sagemaker:AddTags", arn)


def _passes(role_arn: str | None) -> Iterator[Request]:
    if role_arn:
        yield Request("iam:PassRole", role_arn, (("iam:PassedToService", SAGEMAKER_SERVICE),))


def sagemaker_any(operation: str) -> Build:
    """A list operation: no resource in the request, authorised on '*'."""

    def build(params: Params, where: Where) -> Iterator[Request]:
        yield Request(f"sagemaker:{operation}", "*")

    return build


def _create_model(params: Params, where: Where) -> Iterator[Request]:
    arn = where.arn("sagemaker", f"model/{params['ModelName']}")
    yield Request("sagemaker:CreateModel", arn)
    yield from _tags(params, arn)
    yield from _passes(params.get("ExecutionRoleArn"))


def _endpoint(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        arn = where.arn("sagemaker", f"endpoint/{params['EndpointName']}")
        yield Request(f"sagemaker:{operation}", arn)
        yield Request(
            f"sagemaker:{operation}", where.arn("sagemaker", f"endpoint-config/{params['EndpointConfigName']}")
        )
        yield from _tags(params, arn)

    return build


def _pipeline_with_role(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        arn = _name_or_arn(str(params["PipelineName"]), where, "pipeline")
        yield Request(f"sagemaker:{operation}", arn)
        yield from _tags(params, arn)
        yield from _passes(params.get("RoleArn"))

    return build


def _job_with_role(kind: str, member: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        arn = where.arn("sagemaker", f"{kind}/{params[member]}")
        yield Request(f"sagemaker:Create{''.join(part.title() for part in kind.split('-'))}", arn)
        yield from _tags(params, arn)
        yield from _passes(params.get("RoleArn"))

    return build


def _create_package(params: Params, where: Where) -> Iterator[Request]:
    group = _name_or_arn(str(params["ModelPackageGroupName"]), where, "model-package-group")
    yield Request("sagemaker:CreateModelPackage", group)
    yield from _tags(params, group)


def _feature_group_with_role(params: Params, where: Where) -> Iterator[Request]:
    arn = where.arn("sagemaker", f"feature-group/{params['FeatureGroupName']}")
    yield Request("sagemaker:CreateFeatureGroup", arn)
    yield from _tags(params, arn)
    yield from _passes(params.get("RoleArn"))


def _s3_object(action: str) -> Callable[[str], Build]:
    def for_operation(_: str) -> Build:
        def build(params: Params, where: Where) -> Iterator[Request]:
            versioned = action == "GetObject" and params.get("VersionId")
            name = "GetObjectVersion" if versioned else action
            yield Request(f"s3:{name}", where.arn("s3", f"{params['Bucket']}/{params['Key']}", regional=False))

        return build

    return for_operation


def _s3_bucket(action: str) -> Callable[[str], Build]:
    def for_operation(_: str) -> Build:
        def build(params: Params, where: Where) -> Iterator[Request]:
            context = (("s3:prefix", str(params["Prefix"])),) if "Prefix" in params else ()
            yield Request(f"s3:{action}", where.arn("s3", str(params["Bucket"]), regional=False), context)

        return build

    return for_operation


def _s3_delete_objects(params: Params, where: Where) -> Iterator[Request]:
    for item in params["Delete"]["Objects"]:
        action = "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject"
        yield Request(action, where.arn("s3", f"{params['Bucket']}/{item['Key']}", regional=False))


def _s3_copy(params: Params, where: Where) -> Iterator[Request]:
    source = params["CopySource"]
    if isinstance(source, dict):
        source = f"{source['Bucket']}/{source['Key']}"
    yield Request("s3:GetObject", where.arn("s3", str(source).lstrip("/"), regional=False))
    yield Request("s3:PutObject", where.arn("s3", f"{params['Bucket']}/{params['Key']}", regional=False))


def _dynamodb(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        table = f"table/{params['TableName']}"
        if params.get("IndexName"):
            table += f"/index/{params['IndexName']}"
        yield Request(f"dynamodb:{operation}", where.arn("dynamodb", table))

    return build


def _ssm(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        names = params["Names"] if "Names" in params else [params["Name"]]
        for name in names:
            yield Request(f"ssm:{operation}", where.arn("ssm", f"parameter/{str(name).lstrip('/')}"))

    return build


def _secret(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        secret = str(params["SecretId"])
        yield Request(f"secretsmanager:{operation}", secret if secret.startswith("arn:") else where.secret_arn(secret))

    return build


def _queue(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        name = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1] if "QueueUrl" in params else params["QueueName"]
        yield Request(f"sqs:{operation}", where.arn("sqs", name))

    return build


def _put_events(params: Params, where: Where) -> Iterator[Request]:
    for entry in params["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        yield Request("events:PutEvents", bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}"))


def _log_group(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        resource = f"log-group:{params['logGroupName']}"
        if "logStreamName" in params:
            resource += f":log-stream:{params['logStreamName']}"
        yield Request(f"logs:{operation}", where.arn("logs", resource))

    return build


def _metrics(params: Params, where: Where) -> Iterator[Request]:
    yield Request("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", str(params["Namespace"])),))


def _any(service: str) -> Callable[[str], Build]:
    def for_operation(operation: str) -> Build:
        def build(params: Params, where: Where) -> Iterator[Request]:
            yield Request(f"{service}:{operation}", "*")

        return build

    return for_operation


def _ecr(operation: str) -> Build:
    def build(params: Params, where: Where) -> Iterator[Request]:
        yield Request(f"ecr:{operation}", where.arn("ecr", f"repository/{params['repositoryName']}"))

    return build


_EXECUTION = sagemaker("pipeline-execution", "PipelineExecutionArn")
_PIPELINE = sagemaker("pipeline", "PipelineName")
_PACKAGE_BY_NAME = sagemaker("model-package", "ModelPackageName")
_FEATURE_GROUP = sagemaker("feature-group", "FeatureGroupName")

# (boto3 service name, operation) -> how to build its authorisations
_ROWS: dict[tuple[str, str], Callable[[str], Build] | Build] = {
    # SageMaker: pipelines and their runs
    ("sagemaker", "CreatePipeline"): _pipeline_with_role,
    ("sagemaker", "UpdatePipeline"): _pipeline_with_role,
    ("sagemaker", "DescribePipeline"): _PIPELINE,
    ("sagemaker", "DeletePipeline"): _PIPELINE,
    ("sagemaker", "StartPipelineExecution"): _PIPELINE,
    ("sagemaker", "ListPipelineExecutions"): _PIPELINE,
    ("sagemaker", "DescribePipelineExecution"): _EXECUTION,
    ("sagemaker", "ListPipelineExecutionSteps"): _EXECUTION,
    ("sagemaker", "ListPipelineParametersForExecution"): _EXECUTION,
    ("sagemaker", "DescribePipelineDefinitionForExecution"): _EXECUTION,
    ("sagemaker", "StopPipelineExecution"): _EXECUTION,
    ("sagemaker", "RetryPipelineExecution"): _EXECUTION,
    # the pipeline's role creates its steps' jobs and passes them their role
    ("sagemaker", "CreateTrainingJob"): _job_with_role("training-job", "TrainingJobName"),
    ("sagemaker", "CreateProcessingJob"): _job_with_role("processing-job", "ProcessingJobName"),
    ("sagemaker", "DescribeTrainingJob"): sagemaker("training-job", "TrainingJobName"),
    ("sagemaker", "DescribeProcessingJob"): sagemaker("processing-job", "ProcessingJobName"),
    # the model registry
    ("sagemaker", "CreateModelPackageGroup"): sagemaker("model-package-group", "ModelPackageGroupName"),
    ("sagemaker", "DescribeModelPackageGroup"): sagemaker("model-package-group", "ModelPackageGroupName"),
    ("sagemaker", "DeleteModelPackageGroup"): sagemaker("model-package-group", "ModelPackageGroupName"),
    ("sagemaker", "CreateModelPackage"): _create_package,
    ("sagemaker", "DescribeModelPackage"): _PACKAGE_BY_NAME,
    ("sagemaker", "DeleteModelPackage"): _PACKAGE_BY_NAME,
    ("sagemaker", "UpdateModelPackage"): sagemaker("model-package", "ModelPackageArn"),
    ("sagemaker", "ListModelPackages"): sagemaker_any,
    ("sagemaker", "ListModelPackageGroups"): sagemaker_any,
    ("sagemaker", "ListPipelines"): sagemaker_any,
    # hosting
    ("sagemaker", "CreateModel"): _create_model,
    ("sagemaker", "DescribeModel"): sagemaker("model", "ModelName"),
    ("sagemaker", "DeleteModel"): sagemaker("model", "ModelName"),
    ("sagemaker", "CreateEndpointConfig"): sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DescribeEndpointConfig"): sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "DeleteEndpointConfig"): sagemaker("endpoint-config", "EndpointConfigName"),
    ("sagemaker", "CreateEndpoint"): _endpoint,
    ("sagemaker", "UpdateEndpoint"): _endpoint,
    ("sagemaker", "DescribeEndpoint"): sagemaker("endpoint", "EndpointName"),
    ("sagemaker", "DeleteEndpoint"): sagemaker("endpoint", "EndpointName"),
    ("sagemaker-runtime", "InvokeEndpoint"): sagemaker("endpoint", "EndpointName", action="InvokeEndpoint"),
    # the feature store
    ("sagemaker", "CreateFeatureGroup"): _feature_group_with_role,
    ("sagemaker", "DescribeFeatureGroup"): _FEATURE_GROUP,
    ("sagemaker", "DeleteFeatureGroup"): _FEATURE_GROUP,
    ("sagemaker-featurestore-runtime", "PutRecord"): _FEATURE_GROUP,
    ("sagemaker-featurestore-runtime", "GetRecord"): _FEATURE_GROUP,
    # S3 (the operations and the actions they are authorised as)
    ("s3", "GetObject"): _s3_object("GetObject"),
    ("s3", "HeadObject"): _s3_object("GetObject"),
    ("s3", "PutObject"): _s3_object("PutObject"),
    ("s3", "CreateMultipartUpload"): _s3_object("PutObject"),
    ("s3", "UploadPart"): _s3_object("PutObject"),
    ("s3", "CompleteMultipartUpload"): _s3_object("PutObject"),
    ("s3", "AbortMultipartUpload"): _s3_object("AbortMultipartUpload"),
    ("s3", "DeleteObject"): _s3_object("DeleteObject"),
    ("s3", "DeleteObjects"): _s3_delete_objects,
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "ListObjectsV2"): _s3_bucket("ListBucket"),
    ("s3", "ListObjects"): _s3_bucket("ListBucket"),
    ("s3", "HeadBucket"): _s3_bucket("ListBucket"),
    ("s3", "ListObjectVersions"): _s3_bucket("ListBucketVersions"),
    ("s3", "GetBucketLocation"): _s3_bucket("GetBucketLocation"),
    # DynamoDB, SSM, Secrets Manager, SQS, EventBridge, ECR
    **{("dynamodb", op): _dynamodb for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")},
    **{("ssm", op): _ssm for op in ("GetParameter", "GetParameters", "PutParameter", "DeleteParameter")},
    **{("secretsmanager", op): _secret for op in ("GetSecretValue", "PutSecretValue", "DescribeSecret")},
    **{
        ("sqs", op): _queue
        for op in ("SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueUrl")
    },
    ("sqs", "GetQueueAttributes"): _queue,
    ("events", "PutEvents"): _put_events,
    ("ecr", "DescribeImages"): _ecr,
    # what SageMaker does with a job's role (local/executor/service_calls.py): pull the image, write logs, metrics
    ("ecr", "BatchGetImage"): _ecr,
    ("ecr", "BatchCheckLayerAvailability"): _ecr,
    ("ecr", "GetDownloadUrlForLayer"): _ecr,
    ("ecr", "GetAuthorizationToken"): _any("ecr"),
    **{("logs", op): _log_group for op in ("CreateLogGroup", "DescribeLogStreams", "CreateLogStream", "PutLogEvents")},
    ("cloudwatch", "PutMetricData"): _metrics,
    ("sagemaker", "StopTrainingJob"): sagemaker("training-job", "TrainingJobName"),
    ("sagemaker", "StopProcessingJob"): sagemaker("processing-job", "ProcessingJobName"),
}


def operations() -> list[tuple[str, str]]:
    return sorted(_ROWS)


def authorisations(service: str, operation: str, params: Params, where: Where) -> list[Request]:
    """Every action, resource and context the operation is authorised on; KeyError for an operation not in the table."""
    row = _ROWS.get((service, operation))
    if row is None:
        raise UnknownOperation(f"{service}:{operation}")
    build: Build = row(operation) if _is_factory(row) else row  # type: ignore[assignment,call-arg,arg-type]
    return list(build(params, where))


def _is_factory(row: object) -> bool:
    # a row is either a builder (params, where) or a factory taking the operation's name
    code = getattr(row, "__code__", None)
    return code is not None and code.co_argcount == 1

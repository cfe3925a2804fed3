"""The one table from each AWS operation the product calls to what IAM authorises it on: the actions (an operation can
need several: CreateModel passes a role, a tagged create also tags), the resource ARN each acts on, built from the
request, and the request's condition keys. tests/unit/test_iam.py checks every ARN against the resource types AWS's
service authorization reference gives the action (local.iam.catalog).

Every row is a function of the operation's name, its parameters and where it goes. An operation that is not here
cannot be authorised, so it is refused loudly: a new call needs its row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .policy import Request

Params = dict[str, Any]
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
UnknownOperation = KeyError


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


Row = Callable[[str, Params, Where], Iterator[Request]]


def _name_or_arn(value: str, where: Where, kind: str) -> str:
    return value if value.startswith("arn:") else where.arn("sagemaker", f"{kind}/{value}")


def _tags(params: Params, arn: str) -> Iterator[Request]:
    # creating with tags also tags: AWS asks for AddTags on the new resource
    if params.get("Tags"):
        yield Request("sagemaker:AddTags", arn)


def _passes(role_arn: str | None) -> Iterator[Request]:
    if role_arn:
        yield Request("iam:PassRole", role_arn, (("iam:PassedToService", SAGEMAKER_SERVICE),))


def sagemaker(kind: str, member: str, *, passes_role: bool = False) -> Row:
    """A SageMaker operation on the one resource `member` names (or gives the ARN of); a create that tags also tags,
    and one that passes a role (`RoleArn`) passes it to SageMaker."""

    def row(operation: str, params: Params, where: Where) -> Iterator[Request]:
        arn = _name_or_arn(str(params[member]), where, kind)
        yield Request(f"sagemaker:{operation}", arn)
        yield from _tags(params, arn)
        if passes_role:
            yield from _passes(params.get("RoleArn"))

    return row


def anything(service: str) -> Row:
    """An operation on no resource (a list, a token): authorised on '*'."""

    def row(operation: str, params: Params, where: Where) -> Iterator[Request]:
        yield Request(f"{service}:{operation}", "*")

    return row


def _create_model(operation: str, params: Params, where: Where) -> Iterator[Request]:
    yield from sagemaker("model", "ModelName")(operation, params, where)
    yield from _passes(params.get("ExecutionRoleArn"))


def _endpoint(operation: str, params: Params, where: Where) -> Iterator[Request]:
    yield from sagemaker("endpoint", "EndpointName")(operation, params, where)
    yield Request(f"sagemaker:{operation}", where.arn("sagemaker", f"endpoint-config/{params['EndpointConfigName']}"))


def _create_package(operation: str, params: Params, where: Where) -> Iterator[Request]:
    # a version of the group: authorised on the group it goes into
    yield from sagemaker("model-package-group", "ModelPackageGroupName")(operation, params, where)


def _invoke_endpoint(operation: str, params: Params, where: Where) -> Iterator[Request]:
    yield Request("sagemaker:InvokeEndpoint", where.arn("sagemaker", f"endpoint/{params['EndpointName']}"))


def s3_object(action: str) -> Row:
    """An S3 operation on one object, authorised as `action` (HeadObject is s3:GetObject, a versioned GetObject is
    s3:GetObjectVersion)."""

    def row(operation: str, params: Params, where: Where) -> Iterator[Request]:
        named = "GetObjectVersion" if action == "GetObject" and params.get("VersionId") else action
        yield Request(f"s3:{named}", where.arn("s3", f"{params['Bucket']}/{params['Key']}", regional=False))

    return row


def s3_bucket(action: str) -> Row:
    def row(operation: str, params: Params, where: Where) -> Iterator[Request]:
        context = (("s3:prefix", str(params["Prefix"])),) if "Prefix" in params else ()
        yield Request(f"s3:{action}", where.arn("s3", str(params["Bucket"]), regional=False), context)

    return row


def _s3_delete_objects(operation: str, params: Params, where: Where) -> Iterator[Request]:
    for item in params["Delete"]["Objects"]:
        action = "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject"
        yield Request(action, where.arn("s3", f"{params['Bucket']}/{item['Key']}", regional=False))


def _s3_copy(operation: str, params: Params, where: Where) -> Iterator[Request]:
    source = params["CopySource"]
    if isinstance(source, dict):
        source = f"{source['Bucket']}/{source['Key']}"
    yield Request("s3:GetObject", where.arn("s3", str(source).lstrip("/"), regional=False))
    yield Request("s3:PutObject", where.arn("s3", f"{params['Bucket']}/{params['Key']}", regional=False))


def _dynamodb(operation: str, params: Params, where: Where) -> Iterator[Request]:
    table = f"table/{params['TableName']}"
    if params.get("IndexName"):
        table += f"/index/{params['IndexName']}"
    yield Request(f"dynamodb:{operation}", where.arn("dynamodb", table))


def _ssm(operation: str, params: Params, where: Where) -> Iterator[Request]:
    for name in params["Names"] if "Names" in params else [params["Name"]]:
        yield Request(f"ssm:{operation}", where.arn("ssm", f"parameter/{str(name).lstrip('/')}"))


def _secret(operation: str, params: Params, where: Where) -> Iterator[Request]:
    secret = str(params["SecretId"])
    yield Request(f"secretsmanager:{operation}", secret if secret.startswith("arn:") else where.secret_arn(secret))


def _queue(operation: str, params: Params, where: Where) -> Iterator[Request]:
    name = str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1] if "QueueUrl" in params else params["QueueName"]
    yield Request(f"sqs:{operation}", where.arn("sqs", name))


def _put_events(operation: str, params: Params, where: Where) -> Iterator[Request]:
    for entry in params["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        yield Request("events:PutEvents", bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}"))


def _ecr(operation: str, params: Params, where: Where) -> Iterator[Request]:
    yield Request(f"ecr:{operation}", where.arn("ecr", f"repository/{params['repositoryName']}"))


def _log_group(operation: str, params: Params, where: Where) -> Iterator[Request]:
    resource = f"log-group:{params['logGroupName']}"
    if "logStreamName" in params:
        resource += f":log-stream:{params['logStreamName']}"
    yield Request(f"logs:{operation}", where.arn("logs", resource))


def _log_group_events(operation: str, params: Params, where: Where) -> Iterator[Request]:
    """A read of a log group's events: CloudWatch Logs authorises it on the group's ARN as it reports it (`:*`)."""
    yield Request(f"logs:{operation}", where.arn("logs", f"log-group:{params['logGroupName']}:*"))


def _metrics(operation: str, params: Params, where: Where) -> Iterator[Request]:
    yield Request("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", str(params["Namespace"])),))


_EXECUTION = sagemaker("pipeline-execution", "PipelineExecutionArn")
_PIPELINE = sagemaker("pipeline", "PipelineName")
_TRAINING_JOB, _PROCESSING_JOB = (
    sagemaker("training-job", "TrainingJobName"),
    sagemaker("processing-job", "ProcessingJobName"),
)
_GROUP = sagemaker("model-package-group", "ModelPackageGroupName")
_PACKAGE = sagemaker("model-package", "ModelPackageName")
_MODEL, _CONFIG = sagemaker("model", "ModelName"), sagemaker("endpoint-config", "EndpointConfigName")
_FEATURE_GROUP = sagemaker("feature-group", "FeatureGroupName")


def _each(service: str, operations: tuple[str, ...], row: Row) -> dict[tuple[str, str], Row]:
    return dict.fromkeys(((service, operation) for operation in operations), row)


# (boto3 service name, operation) -> its row
_ROWS: dict[tuple[str, str], Row] = {
    # SageMaker: pipelines and their runs
    **_each("sagemaker", ("CreatePipeline", "UpdatePipeline"), sagemaker("pipeline", "PipelineName", passes_role=True)),
    **_each(
        "sagemaker",
        ("DescribePipeline", "DeletePipeline", "StartPipelineExecution", "ListPipelineExecutions"),
        _PIPELINE,
    ),
    **_each(
        "sagemaker",
        (
            "DescribePipelineExecution",
            "ListPipelineExecutionSteps",
            "ListPipelineParametersForExecution",
            "DescribePipelineDefinitionForExecution",
            "StopPipelineExecution",
            "RetryPipelineExecution",
        ),
        _EXECUTION,
    ),
    # the pipeline's role creates its steps' jobs and passes them their role, watches and stops them
    ("sagemaker", "CreateTrainingJob"): sagemaker("training-job", "TrainingJobName", passes_role=True),
    ("sagemaker", "CreateProcessingJob"): sagemaker("processing-job", "ProcessingJobName", passes_role=True),
    **_each("sagemaker", ("DescribeTrainingJob", "StopTrainingJob"), _TRAINING_JOB),
    **_each("sagemaker", ("DescribeProcessingJob", "StopProcessingJob"), _PROCESSING_JOB),
    # the model registry
    **_each("sagemaker", ("CreateModelPackageGroup", "DescribeModelPackageGroup", "DeleteModelPackageGroup"), _GROUP),
    ("sagemaker", "CreateModelPackage"): _create_package,
    **_each("sagemaker", ("DescribeModelPackage", "DeleteModelPackage"), _PACKAGE),
    ("sagemaker", "UpdateModelPackage"): sagemaker("model-package", "ModelPackageArn"),
    **_each("sagemaker", ("ListModelPackages", "ListModelPackageGroups", "ListPipelines"), anything("sagemaker")),
    # hosting
    ("sagemaker", "CreateModel"): _create_model,
    **_each("sagemaker", ("DescribeModel", "DeleteModel"), _MODEL),
    **_each("sagemaker", ("CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig"), _CONFIG),
    **_each("sagemaker", ("CreateEndpoint", "UpdateEndpoint"), _endpoint),
    **_each("sagemaker", ("DescribeEndpoint", "DeleteEndpoint"), sagemaker("endpoint", "EndpointName")),
    **_each("sagemaker", ("ListModels", "ListEndpointConfigs"), anything("sagemaker")),
    ("sagemaker-runtime", "InvokeEndpoint"): _invoke_endpoint,
    # the feature store
    ("sagemaker", "CreateFeatureGroup"): sagemaker("feature-group", "FeatureGroupName", passes_role=True),
    **_each("sagemaker", ("DescribeFeatureGroup", "DeleteFeatureGroup"), _FEATURE_GROUP),
    **_each("sagemaker-featurestore-runtime", ("PutRecord", "GetRecord"), _FEATURE_GROUP),
    # S3 (the operations and the actions they are authorised as)
    **_each("s3", ("GetObject", "HeadObject"), s3_object("GetObject")),
    **_each(
        "s3", ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"), s3_object("PutObject")
    ),
    ("s3", "AbortMultipartUpload"): s3_object("AbortMultipartUpload"),
    ("s3", "DeleteObject"): s3_object("DeleteObject"),
    ("s3", "DeleteObjects"): _s3_delete_objects,
    ("s3", "CopyObject"): _s3_copy,
    **_each("s3", ("ListObjectsV2", "ListObjects", "HeadBucket"), s3_bucket("ListBucket")),
    ("s3", "ListObjectVersions"): s3_bucket("ListBucketVersions"),
    ("s3", "GetBucketLocation"): s3_bucket("GetBucketLocation"),
    # DynamoDB, SSM, Secrets Manager, SQS, EventBridge
    **_each("dynamodb", ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"), _dynamodb),
    **_each("ssm", ("GetParameter", "GetParameters", "PutParameter", "DeleteParameter"), _ssm),
    **_each("secretsmanager", ("GetSecretValue", "PutSecretValue", "DescribeSecret"), _secret),
    **_each(
        "sqs",
        (
            "SendMessage",
            "ReceiveMessage",
            "DeleteMessage",
            "ChangeMessageVisibility",
            "GetQueueUrl",
            "GetQueueAttributes",
        ),
        _queue,
    ),
    ("events", "PutEvents"): _put_events,
    # ECR, and what SageMaker does with a job's role (local/executor/service_calls.py): pull the image, logs, metrics
    **_each("ecr", ("DescribeImages", "BatchGetImage", "BatchCheckLayerAvailability", "GetDownloadUrlForLayer"), _ecr),
    ("ecr", "GetAuthorizationToken"): anything("ecr"),
    **_each("logs", ("CreateLogGroup", "DescribeLogStreams", "CreateLogStream", "PutLogEvents"), _log_group),
    ("cloudwatch", "PutMetricData"): _metrics,
    # GET /runs/{id}: the Train step's epoch lines
    ("logs", "FilterLogEvents"): _log_group_events,
}


def operations() -> list[tuple[str, str]]:
    return sorted(_ROWS)


def authorisations(service: str, operation: str, params: Params, *, where: Where) -> list[Request]:
    """Every action, resource and context the operation is authorised on; KeyError for an operation not in the table."""
    row = _ROWS.get((service, operation))
    if row is None:
        raise UnknownOperation(f"{service}:{operation}")
    return list(row(operation, params, where))

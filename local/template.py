"""template.yaml in the local stack: the values CloudFormation would compute (names, ARNs), as the local stack
names them (also the ones config/pipeline.yaml carries), and the template's resources created from them in the
emulated AWS: the same table keys, parameter text, secret shape and model package group a deployment gets.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from local.emulator import REGION
from sam_stack.template import Template

ACCOUNT = "123456789012"
STACK = "scratch-detector"

# What CloudFormation would resolve, as the local stack names things
LOCAL_VALUES: dict[str, str] = {
    "AWS::StackName": STACK,
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "SageMakerExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-sagemaker",
    "ImageRepository": STACK,
    "ArtifactBucket": f"{STACK}-{ACCOUNT}",
    "ConfigParameter": f"/{STACK}/pipeline-config",
    "SlackSecret": f"{STACK}/slack",
    "IdempotencyTable": f"{STACK}-idempotency",
    "AuditTable": f"{STACK}-audit",
    "ModelPackageGroup.ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{STACK}",
    "FeatureStoreRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/{STACK}-feature-store",
    "FeatureGroup": f"{STACK}-labels",
    # the REST API's id; the local stack points API_URL at its own loopback API instead
    "RestApi": "local00api",
    # the ARNs the roles' statements name (local/iam/roles.py)
    "ArtifactBucket.Arn": f"arn:aws:s3:::{STACK}-{ACCOUNT}",
    "ImageRepository.Arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{STACK}",
    "AuditTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-audit",
    "IdempotencyTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-idempotency",
}
# The template's queues, under the names CloudFormation would generate: a queue's Ref is its URL (moto finds
# a queue by the URL's last segment)
QUEUES = {"DeadLetterQueue": f"{STACK}-dead-letters", "DecisionQueue": f"{STACK}-decisions"}
for _logical_id, _name in QUEUES.items():
    LOCAL_VALUES[_logical_id] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{_name}"
    LOCAL_VALUES[f"{_logical_id}.Arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{_name}"
    LOCAL_VALUES[f"{_logical_id}.QueueName"] = _name
# Parameter values of the local stack where they differ from the template's defaults
LOCAL_PARAMETERS: dict[str, str] = {
    "ImageTag": "latest",
    # as CI deploys it: every role capped by rollout/github-oidc.yaml's boundary, which local/iam/roles.py evaluates
    "PermissionsBoundaryArn": f"arn:aws:iam::{ACCOUNT}:policy/{STACK}-roles-boundary",
    "OfflineStoreUri": (
        f"s3://{STACK}-{ACCOUNT}/feature-store/{ACCOUNT}/sagemaker/{REGION}/offline-store/{STACK}-labels/data"
    ),
}

# What the local stack "pushes" to its ECR repository: a manifest with no layers (the image is container/.venv)
LOCAL_IMAGE_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        },
        "layers": [],
    }
)


def local_values(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the template's references resolve to in the local stack: its fixed names and parameter values, with
    `overrides` over them."""
    return {**LOCAL_VALUES, **LOCAL_PARAMETERS, **(overrides or {})}


def feature_group_request(template: Template, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """CreateFeatureGroup's arguments for the template's FeatureGroup (the labelled-image schema lives there)."""
    return dict(template.resolve(template.resource("FeatureGroup")["Properties"], local_values(overrides)))


def create_artifact_bucket(template: Template, s3: Any, bucket: str) -> None:
    """The template's ArtifactBucket, versioned as the template says: Preprocess reads each image at its version as
    of the run's DataAsOf (detector.image_source), which needs the versions an overwrite keeps."""
    s3.create_bucket(Bucket=bucket)
    versioning = template.resource("ArtifactBucket")["Properties"]["VersioningConfiguration"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=versioning)


def provision(template: Template, clients: dict[str, Any], overrides: dict[str, str] | None = None) -> None:
    """Create the template's tables, queues, config parameter, Slack secret, image repository (holding the
    local image's tag) and model package group."""
    given = local_values(overrides)
    values = template.values(given)
    queues = template.of_type("AWS::SQS::Queue")
    # a redrive policy names its dead-letter queue, which must exist first
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"]):
        props = template.resolve(queues[logical_id]["Properties"], given)
        attributes = {
            k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items() if k != "RedrivePolicy"
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        clients["sqs"].create_queue(QueueName=values[f"{logical_id}.QueueName"], Attributes=attributes)
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        clients["dynamodb"].create_table(
            TableName=values[logical_id],
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
        )
        if "TimeToLiveSpecification" in props:
            clients["dynamodb"].update_time_to_live(
                TableName=values[logical_id], TimeToLiveSpecification=props["TimeToLiveSpecification"]
            )
    parameter = template.resource("ConfigParameter")["Properties"]
    clients["ssm"].put_parameter(
        Name=values["ConfigParameter"],
        Value=template.resolve(parameter["Value"], given),
        Type=parameter["Type"],
        Overwrite=True,
    )
    # what GenerateSecretString creates: the template's JSON with a random value under the generated key
    generated = template.resource("SlackSecret")["Properties"]["GenerateSecretString"]
    placeholder = {
        **json.loads(generated["SecretStringTemplate"]),
        generated["GenerateStringKey"]: secrets.token_hex(16),
    }
    clients["secretsmanager"].create_secret(Name=values["SlackSecret"], SecretString=json.dumps(placeholder))
    repository = template.resource("ImageRepository")["Properties"]
    clients["ecr"].create_repository(
        repositoryName=values["ImageRepository"], imageTagMutability=repository["ImageTagMutability"]
    )
    # the local "image" is container/.venv; the repository holds a manifest under the deployed tag, so that
    # the config's image URI names an image that exists, as a deployment's must
    clients["ecr"].put_image(
        repositoryName=values["ImageRepository"], imageManifest=LOCAL_IMAGE_MANIFEST, imageTag=values["ImageTag"]
    )
    group = template.resource("ModelPackageGroup")["Properties"]
    clients["sagemaker"].create_model_package_group(
        ModelPackageGroupName=template.resolve(group["ModelPackageGroupName"], given),
        ModelPackageGroupDescription=group["ModelPackageGroupDescription"],
    )

"""template.yaml as the source of the local resources: the same table keys, parameter text, secret shape,
model package group and function environments that a deployment gets, created in the emulated AWS.

Only what the template states is used; values CloudFormation would compute (names, ARNs) take the local
stack's fixed values below, which are also the ones config/pipeline.yaml carries.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local.emulator import REGION

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
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


# what `!Ref AWS::NoValue` resolves to: the property or list item is left out, as CloudFormation leaves it out
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Template:
    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> Template:
        return cls(yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader))  # noqa: S506 (SafeLoader subclass)

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.body["Resources"][logical_id])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.body["Resources"].items() if r["Type"] == kind}

    def parameters(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        values = {name: str(p.get("Default", "")) for name, p in self.body["Parameters"].items()}
        values.update(LOCAL_PARAMETERS)
        values.update(overrides or {})
        return values

    def values(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        return {**LOCAL_VALUES, **self.parameters(overrides)}

    def resolve(self, value: Any, overrides: dict[str, str] | None = None) -> Any:
        """A property value with Ref, GetAtt, Sub and If resolved to the local stack's values."""
        values = self.values(overrides)
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else values[argument]
            if key == "Fn::GetAtt":
                return values[".".join(argument)]
            if key == "Fn::Sub" and isinstance(argument, list):
                text, variables = argument
                return sub(text, {**values, **{k: str(self.resolve(v, overrides)) for k, v in variables.items()}})
            if key == "Fn::Sub":
                return sub(argument, values)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name, overrides) else when_false, overrides)
        if isinstance(value, dict):
            resolved = {k: self.resolve(v, overrides) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(v, overrides) for v in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str, overrides: dict[str, str] | None = None) -> bool:
        """One of the template's Conditions, from the local stack's parameter values."""
        return self._holds(self.body["Conditions"][name], overrides)

    def _holds(self, expression: dict[str, Any], overrides: dict[str, str] | None) -> bool:
        ((key, argument),) = expression.items()
        if key == "Fn::Equals":
            left, right = (str(self.resolve(side, overrides)) for side in argument)
            return left == right
        if key == "Fn::Not":
            return not self._holds(argument[0], overrides)
        if key == "Fn::And":
            return all(self._holds(part, overrides) for part in argument)
        if key == "Fn::Or":
            return any(self._holds(part, overrides) for part in argument)
        if key == "Condition":
            return self.condition(argument, overrides)
        raise KeyError(f"template.yaml: condition function {key} is not supported locally")

    def environment(self, function: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """A function's environment: Globals first, then its own variables, resolved."""
        shared = self.body.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resource(function)["Properties"].get("Environment", {}).get("Variables", {})
        # Lambda gives the function its LoggingConfig's ApplicationLogLevel, which Powertools takes
        logging_config = {
            **self.body.get("Globals", {}).get("Function", {}).get("LoggingConfig", {}),
            **self.resource(function)["Properties"].get("LoggingConfig", {}),
        }
        runtime = {"AWS_LAMBDA_LOG_LEVEL": logging_config["ApplicationLogLevel"]} if logging_config else {}
        env = {}
        for name, value in {**runtime, **shared, **own}.items():
            env[name] = str(self.resolve(value, overrides))
        return env


def sub(text: str, values: dict[str, str]) -> str:
    """Fn::Sub over `values`; a name the template uses but `values` lacks is an error, not a blank."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template.yaml: no local value for ${{{name}}}")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", replace, text)


def feature_group_request(template: Template, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """CreateFeatureGroup's arguments for the template's FeatureGroup (the labelled-image schema lives there)."""
    return dict(template.resolve(template.resource("FeatureGroup")["Properties"], overrides))


def provision(template: Template, clients: dict[str, Any], overrides: dict[str, str] | None = None) -> None:
    """Create the template's tables, queues, config parameter, Slack secret, image repository (holding the
    local image's tag) and model package group."""
    values = template.values(overrides)
    queues = template.of_type("AWS::SQS::Queue")
    # a redrive policy names its dead-letter queue, which must exist first
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]["Properties"]):
        props = template.resolve(queues[logical_id]["Properties"], overrides)
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
        Value=template.resolve(parameter["Value"], overrides),
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
        ModelPackageGroupName=template.resolve(group["ModelPackageGroupName"], overrides),
        ModelPackageGroupDescription=group["ModelPackageGroupDescription"],
    )

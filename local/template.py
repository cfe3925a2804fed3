"""template.yaml as the source of the local resources: the same table keys, parameter text, secret shape,
model package group and function environments that a deployment gets, created in the emulated AWS.

Only what the template states is used; values CloudFormation would compute (names, ARNs) take the local
stack's fixed values below, which are also the ones config/pipeline.yaml carries.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
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


class UnresolvedReference(KeyError):
    """A reference that the values given do not resolve. CloudFormation would refuse the template; a value made up
    here (a default, another stack's name) would name something that is not this stack's."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"template: no value for {self.name} (the caller gives every name, attribute and pseudo parameter)"


@dataclass(frozen=True)
class Template:
    """A CloudFormation template, resolved against the values its caller gives: the pseudo parameters, the names
    and attributes CloudFormation would compute, and the parameter values (a parameter not given takes its
    Default). Nothing else is filled in."""

    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> Template:
        return cls(yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader))  # noqa: S506 (SafeLoader subclass)

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.body["Resources"][logical_id])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.body["Resources"].items() if r["Type"] == kind}

    def parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """Every parameter's value: the one given, else its Default (one with neither is left out)."""
        found = {}
        for name, parameter in self.body.get("Parameters", {}).items():
            if name in given:
                found[name] = given[name]
            elif "Default" in parameter:
                found[name] = str(parameter["Default"])
        return found

    def values(self, given: Mapping[str, str]) -> dict[str, str]:
        """What a reference resolves to: `given`, with the parameters' defaults for the parameters not given."""
        return {**given, **self.parameters(given)}

    def resolve(self, value: Any, given: Mapping[str, str]) -> Any:
        """A property value with Ref, GetAtt, Sub and If resolved to `given` (and the parameters' defaults)."""
        return self._resolve(value, self.values(given))

    def _resolve(self, value: Any, values: dict[str, str]) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else _lookup(values, argument)
            if key == "Fn::GetAtt":
                return _lookup(values, ".".join(argument))
            if key == "Fn::Sub" and isinstance(argument, list):
                text, variables = argument
                return sub(text, {**values, **{k: str(self._resolve(v, values)) for k, v in variables.items()}})
            if key == "Fn::Sub":
                return sub(argument, values)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self._resolve(when_true if self._condition(name, values) else when_false, values)
        if isinstance(value, dict):
            resolved = {k: self._resolve(v, values) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self._resolve(v, values) for v in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str, given: Mapping[str, str]) -> bool:
        """One of the template's Conditions, for `given` (and the parameters' defaults)."""
        return self._condition(name, self.values(given))

    def _condition(self, name: str, values: dict[str, str]) -> bool:
        return self._holds(self.body["Conditions"][name], values)

    def _holds(self, expression: dict[str, Any], values: dict[str, str]) -> bool:
        ((key, argument),) = expression.items()
        if key == "Fn::Equals":
            left, right = (str(self._resolve(side, values)) for side in argument)
            return left == right
        if key == "Fn::Not":
            return not self._holds(argument[0], values)
        if key == "Fn::And":
            return all(self._holds(part, values) for part in argument)
        if key == "Fn::Or":
            return any(self._holds(part, values) for part in argument)
        if key == "Condition":
            return self._condition(argument, values)
        raise KeyError(f"template: condition function {key} is not supported")

    def environment(self, function: str, given: Mapping[str, str]) -> dict[str, str]:
        """A function's environment: Globals first, then its own variables, resolved to `given`."""
        shared = self.body.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resource(function)["Properties"].get("Environment", {}).get("Variables", {})
        # Lambda gives the function its LoggingConfig's ApplicationLogLevel, which Powertools takes
        logging_config = {
            **self.body.get("Globals", {}).get("Function", {}).get("LoggingConfig", {}),
            **self.resource(function)["Properties"].get("LoggingConfig", {}),
        }
        runtime = {"AWS_LAMBDA_LOG_LEVEL": logging_config["ApplicationLogLevel"]} if logging_config else {}
        values = self.values(given)
        return {name: str(self._resolve(value, values)) for name, value in {**runtime, **shared, **own}.items()}


def _lookup(values: Mapping[str, str], name: str) -> str:
    if name not in values:
        raise UnresolvedReference(name)
    return values[name]


def sub(text: str, values: Mapping[str, str]) -> str:
    """Fn::Sub over `values`; a name the template uses but `values` lacks is an error, not a blank."""
    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda match: _lookup(values, match.group(1)), text)


def local_values(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the template's references resolve to in the local stack: its fixed names and parameter values, with
    `overrides` over them."""
    return {**LOCAL_VALUES, **LOCAL_PARAMETERS, **(overrides or {})}


def feature_group_request(template: Template, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """CreateFeatureGroup's arguments for the template's FeatureGroup (the labelled-image schema lives there)."""
    return dict(template.resolve(template.resource("FeatureGroup")["Properties"], local_values(overrides)))


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

"""template.yaml against the code: the config parameter, the routes and the environments it gives."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator
from pydantic import BaseModel, ValidationError

from control_plane.models import DecisionRequest, StartRunRequest
from local.template import local_values
from pipeline_def import build_definition
from pipeline_def.config import PipelineConfig
from pipeline_def.names import DATASET_REPORT, dataset_report_beside
from sam_stack.template import Template
from tests.conftest import REPO
from tests.unit.definition_tools import resolve, steps_by_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def test_config_parameter_is_config_pipeline_yaml_with_the_stacks_values(template: Template) -> None:
    # Given the SSM parameter's text with the local stack's names put in
    text = template.resolve(template.resource("ConfigParameter")["Properties"]["Value"], local_values())

    # Then it is the same config as the repository's, field for field
    assert PipelineConfig.from_yaml(text) == PipelineConfig.from_file(ROOT / "config" / "pipeline.yaml")


def test_config_parameter_takes_the_slack_approvers_parameter(template: Template) -> None:
    text = template.resolve(
        template.resource("ConfigParameter")["Properties"]["Value"],
        local_values({"SlackApprovers": "U012AB3CD,U045EF6GH"}),
    )

    assert PipelineConfig.from_yaml(text).slack.approvers == ["U012AB3CD", "U045EF6GH"]


def _routes_in_code(function: str) -> set[tuple[str, str]]:
    tree = ast.parse((ROOT / "functions" / function / "app.py").read_text())
    routes = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "post"}
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "app"
            and node.args
        ):
            path = re.sub(r"<(\w+)>", r"{\1}", ast.literal_eval(node.args[0]))
            routes.add((node.func.attr.upper(), path))
    return routes


@pytest.mark.parametrize("function", ["ApiFunction", "SlackActionsFunction"])
def test_every_route_in_the_code_is_in_the_template_and_back(template: Template, function: str) -> None:
    # Given the Api events of the function and the resolver's routes
    events = template.resource(function)["Properties"]["Events"]
    declared = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events.values() if e["Type"] == "Api"}
    folder = template.resource(function)["Properties"]["CodeUri"].split("/")[-1]
    in_code = _routes_in_code(folder)

    assert declared == in_code


def test_only_the_slack_route_and_the_api_document_are_open(template: Template) -> None:
    open_routes = {
        (name, e["Properties"]["Method"], e["Properties"]["Path"])
        for name, resource in template.of_type("AWS::Serverless::Function").items()
        for e in resource["Properties"].get("Events", {}).values()
        if e["Type"] == "Api" and e["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }

    # Slack signs its own requests; the OpenAPI document holds no secret and a browser cannot sign
    assert open_routes == {("SlackActionsFunction", "POST", "/slack/actions"), ("ApiFunction", "GET", "/openapi.json")}
    assert template.resource("RestApi")["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"


# actions that IAM cannot scope to a resource: the only ones a statement may grant on "*"
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "sagemaker:ListModelPackages",
    "sagemaker:ListPipelines",
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListModels",
}


def _allow_statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in template.body["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [p.get("PolicyDocument", p) for p in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document.get("Statement", []) if isinstance(document, dict) else []:
                # a conditional statement (Fn::If) is either of its branches; AWS::NoValue is none
                branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                for branch in branches:
                    if branch.get("Effect") == "Allow":
                        found.append((name, branch))
    return found


def test_no_statement_grants_every_action_or_every_resource_needlessly(template: Template) -> None:
    statements = _allow_statements(template)
    assert len(statements) > 20

    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), (name, actions)
        if statement["Resource"] == "*":
            assert set(actions) <= NO_RESOURCE_LEVEL, (name, actions)


BODIES = {
    "StartRun": [
        {},
        {"parameters": {"NumEpochs": 2, "LearningRate": 0.001, "Backbone": "darknet53", "Flag": True}},
        {"display_name": "nightly-retrain", "description": "x" * 1024},
        {"display_name": "has spaces"},
        {"display_name": "-leading"},
        # SageMaker's limit is 82 characters, which its pattern alone does not hold when hyphens repeat
        {"display_name": "a" + "-" * 80 + "b"},
        {"display_name": "a" + "-" * 81 + "b"},
        {"description": "x" * 1025},
        {"description": "two\nlines"},
        {"description": "a\ttab"},
        {"description": "a line\u2028separator"},
        {"description": "Überprüfung nach dem Regen, 7 Bilder"},
        {"parameters": {"NumEpochs": [2]}},
        {"parameters": {"NumEpochs": None}},
        {"parameters": "NumEpochs=2"},
        {"colour": "red"},
        {"data_as_of": "2026-12-05T02:00:00Z"},
        {"data_as_of": "x" * 65},
        {"data_as_of": 1764900000},
    ],
    "Decision": [
        {"comment": "looks good"},
        {"comment": ""},
        {"comment": "   "},
        {"comment": "x" * 513},
        {"comment": "fine\nreally"},
        {"comment": "  looks good  "},
        {"comment": "bell\x07"},
        {},
        {"comment": "ok", "approver": "me"},
        {"comment": 5},
    ],
}


@pytest.mark.parametrize("model", sorted(BODIES))
def test_api_gateway_models_agree_with_the_pydantic_requests(template: Template, model: str) -> None:
    # Given the schema API Gateway checks and the model the function checks
    schema = template.resource("RestApi")["Properties"]["Models"][model]
    models: dict[str, type[BaseModel]] = {"StartRun": StartRunRequest, "Decision": DecisionRequest}
    pydantic_model = models[model]
    Draft4Validator.check_schema(schema)

    for body in BODIES[model]:
        gateway_accepts = Draft4Validator(schema).is_valid(body)
        try:
            pydantic_model.model_validate(body)
            function_accepts = True
        except ValidationError:
            function_accepts = False
        # Then both accept and refuse the same bodies
        assert gateway_accepts == function_accepts, body


def test_the_feature_group_has_the_schema_ingest_and_preprocess_read(template: Template) -> None:
    # the container's records (container/detector/records.py, another environment: read, not imported)
    source = (REPO / "container" / "detector" / "records.py").read_text()
    [features] = [
        node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "FEATURES"
    ]
    group = template.resource("FeatureGroup")["Properties"]

    assert [d["FeatureName"] for d in group["FeatureDefinitions"]] == list(ast.literal_eval(features))
    assert (group["RecordIdentifierFeatureName"], group["EventTimeFeatureName"]) == ("source_ref", "event_time")
    # the stack names its own group after itself, so dev and prod in one account do not collide
    assert template.resolve(group["FeatureGroupName"], local_values()) == f"{local_values()['AWS::StackName']}-labels"


def test_the_config_names_the_stacks_group_unless_another_is_given(template: Template) -> None:
    value = template.resource("ConfigParameter")["Properties"]["Value"]

    def group(overrides: dict[str, str]) -> Any:
        return yaml.safe_load(template.resolve(value, local_values(overrides)))["feature_group"]

    assert group({"FeatureGroupName": "", "OfflineStoreUri": ""}) == {
        "name": "scratch-detector-labels",
        "offline_store_uri": None,
    }
    assert group({"FeatureGroupName": "labelling-team", "OfflineStoreUri": ""})["name"] == "labelling-team"


def test_no_lifecycle_rule_expires_an_image_a_registered_model_may_name(template: Template) -> None:
    # model packages name their image by its commit tag; an expired tag makes an approved model undeployable
    policy = json.loads(template.resource("ImageRepository")["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])

    assert policy["rules"]
    for rule in policy["rules"]:
        assert rule["selection"]["tagStatus"] == "untagged", rule


def _s3_reads(template: Template, role_of: str) -> list[str]:
    """The object ARNs a function's role may s3:GetObject, with the stack's names put in."""
    bucket, stack = local_values()["ArtifactBucket"], local_values()["AWS::StackName"]
    found = []
    for name, statement in _allow_statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if name != role_of or "s3:GetObject" not in actions:
            continue
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            text = resource["Fn::Sub"]
            found.append(
                text.replace("${ArtifactBucket.Arn}", f"arn:aws:s3:::{bucket}").replace("${AWS::StackName}", stack)
            )
    return found


def test_the_api_and_notify_read_exactly_the_prefixes_the_pipeline_writes_their_results_to(template: Template) -> None:
    # Given where the deployed config's pipeline puts a run's evaluation and its model (execution id EXEC)
    config = PipelineConfig.from_yaml(
        template.resolve(template.resource("ConfigParameter")["Properties"]["Value"], local_values())
    )
    steps = steps_by_name(json.loads(build_definition(config)))
    execution = {"PipelineExecutionId": "EXEC"}
    [evaluation] = steps["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    folder = resolve(evaluation["S3Output"]["S3Uri"], {}, execution)
    model = resolve(steps["Train"]["Arguments"]["OutputDataConfig"]["S3OutputPath"], {}, execution)
    wanted = [f"{folder}/{name}" for name in ("evaluation.json", "predictions.png", "training_curves.png")]
    archive = f"{model}/pipelines-EXEC-Train-abc/output/model.tar.gz"  # SageMaker: <path>/<job name>/output/
    [report] = [
        o for o in steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "report"
    ]
    dataset = f"{resolve(report['S3Output']['S3Uri'], {}, execution)}/{DATASET_REPORT}"

    def arn(uri: str) -> str:
        return "arn:aws:s3:::" + uri.removeprefix("s3://")

    # Then the API may read each of them, the archive and Preprocess's dataset report, and nothing else of the bucket
    # (its links are presigned with its role); notify, the evaluation's files and the dataset report, which it finds
    # beside the evaluation
    api, notify = _s3_reads(template, "ApiFunction"), _s3_reads(template, "NotifyFunction")
    for uri in [*wanted, archive, dataset]:
        assert any(fnmatch.fnmatchcase(arn(uri), pattern) for pattern in api), (uri, api)
    assert len(api) == 3
    for uri in [*wanted, dataset]:
        assert any(fnmatch.fnmatchcase(arn(uri), pattern) for pattern in notify), (uri, notify)
    assert dataset_report_beside(f"{folder}/evaluation.json") == dataset
    assert not any(fnmatch.fnmatchcase(arn(archive), pattern) for pattern in notify)
    for elsewhere in (f"{folder.rsplit('/', 3)[0]}/Preprocess/train/train.rec", "s3://x/feature-store/data"):
        assert not any(fnmatch.fnmatchcase(arn(elsewhere), pattern) for pattern in api + notify), elsewhere


def test_the_slack_secret_is_named_after_the_stack_as_the_cloudformation_role_expects(template: Template) -> None:
    # a secret CloudFormation names itself (SlackSecret-<random>) cannot be told apart from another stack's: the
    # deploy role of one environment could manage the other's
    secret = template.resource("SlackSecret")["Properties"]
    assert secret["Name"] == {"Fn::Sub": "${AWS::StackName}/slack"}
    oidc = (Path(__file__).resolve().parents[2] / "rollout" / "github-oidc.yaml").read_text()
    assert ":secret:${Stack}/slack-??????" in oidc

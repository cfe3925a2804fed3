"""template.yaml, samconfig.toml, the GitHub workflow and the OIDC roles' template name the same things:
environments, stacks, the outputs rollout reads, and the API stage the CI role may call."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.iam import catalog
from rollout.destroy import Names
from rollout.environments import Environment, environment, environments
from rollout.stack import Deployed
from sam_stack.template import Template, UnresolvedReference

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"


@pytest.fixture(scope="module")
def envs() -> dict[str, Environment]:
    return environments()


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text()))


@pytest.fixture(scope="module")
def oidc() -> Template:
    return Template.load(ROOT / "rollout" / "github-oidc.yaml")


def test_samconfig_has_the_templates_environments_each_with_its_own_stack(envs: dict[str, Environment]) -> None:
    allowed = Template.load().body["Parameters"]["Environment"]["AllowedValues"]

    assert sorted(envs) == sorted(allowed) == ["dev", "prod"]
    assert envs["dev"].config_env == "default"  # DESIGN.md: default = dev
    assert {e.stack_name for e in envs.values()} == {"scratch-detector-dev", "scratch-detector-prod"}
    for env in envs.values():
        # make destroy finds the deployment packages under the stack's name
        assert env.s3_prefix == env.stack_name
        tags = tomllib.loads((ROOT / "samconfig.toml").read_text())[env.config_env]["deploy"]["parameters"]["tags"]
        assert f'environment="{env.name}"' in tags


def test_the_outputs_rollout_reads_are_in_the_template() -> None:
    outputs = Template.load().body["Outputs"]

    assert {field.alias for field in Deployed.model_fields.values()} <= set(outputs)


def test_workflow_jobs_deploy_the_environment_they_run_in(
    workflow: dict[str, Any], envs: dict[str, Environment]
) -> None:
    jobs = workflow["jobs"]
    by_environment = {job["environment"]: job for job in jobs.values() if "environment" in job}

    assert sorted(by_environment) == sorted(envs)
    for name, job in by_environment.items():
        commands = " ".join(step.get("run", "") for step in job["steps"])
        targets = re.findall(r"make ([a-z-]+) ENV=(\w+)", commands)
        assert targets, f"job in {name} runs no make target"
        assert {env for _, env in targets} == {name}
    assert "make test" in " ".join(step.get("run", "") for step in jobs["test"]["steps"])
    # promotion waits for dev, and copies dev's image
    assert by_environment["prod"]["needs"] == "deploy-dev"
    assert "PROMOTE_FROM=dev" in " ".join(step.get("run", "") for step in by_environment["prod"]["steps"])


def test_the_oidc_roles_cover_the_samconfig_stacks_and_the_workflows_promotion(
    oidc: Template, envs: dict[str, Environment]
) -> None:
    mapping = oidc.body["Mappings"]["Environments"]

    assert sorted(oidc.body["Parameters"]["Environment"]["AllowedValues"]) == sorted(envs)
    assert {name: m["StackName"] for name, m in mapping.items()} == {n: e.stack_name for n, e in envs.items()}
    assert mapping["prod"]["ImageSource"] == envs["dev"].stack_name


def test_the_workflow_reads_the_variables_the_oidc_stack_outputs(oidc: Template) -> None:
    text = WORKFLOW.read_text()
    used = set(re.findall(r"vars\.(\w+)", text))
    described = " ".join(o["Description"] for o in oidc.body["Outputs"].values())

    assert used == {"AWS_DEPLOY_ROLE_ARN", "AWS_CLOUDFORMATION_ROLE_ARN", "AWS_ROLES_BOUNDARY_ARN", "AWS_REGION"}
    assert all(name in described for name in used - {"AWS_REGION"})


def test_the_ci_role_may_start_runs_on_the_stage_the_api_serves(oidc: Template) -> None:
    api = Template.load().resource("RestApi")["Properties"]
    statements = oidc.resource("DeployRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [start] = [s for s in statements if s["Sid"] == "StartRun"]

    assert api["StageName"] == {"Ref": "Environment"}
    assert start["Resource"]["Fn::Sub"].endswith(":*/${Environment}/POST/runs")


def test_the_ci_role_may_read_the_account_setting_make_deploy_checks_first(oidc: Template) -> None:
    statements = oidc.resource("DeployRole")["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [check] = [s for s in statements if s["Sid"] == "AccountCheck"]

    assert check["Action"] == "apigateway:GET"
    assert check["Resource"]["Fn::Sub"].endswith(":apigateway:${AWS::Region}::/account")


def test_the_deploy_role_trusts_only_its_repositorys_jobs_in_its_environment(oidc: Template) -> None:
    [statement] = oidc.resource("DeployRole")["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": {
                "Fn::Sub": "repo:${GitHubRepository}:environment:${Environment}"
            },
        }
    }


def test_the_cloudformation_role_reaches_only_resources_named_after_its_stack(oidc: Template) -> None:
    [policy] = oidc.resource("CloudFormationRole")["Properties"]["Policies"]
    text, names = policy["PolicyDocument"]["Fn::Sub"]
    document = json.loads(text)  # the policy is JSON inside !Sub: it must stay valid JSON
    # resources that cannot carry the stack's name: the API and event source mappings (ids are generated; the
    # mappings' changes conditioned on the stack's functions), service-linked roles (conditioned on the service),
    # and actions IAM cannot scope (conditioned
    # where IAM allows, read-only otherwise), the Glue database SageMaker names for every feature group, and the
    # holders of the stack's duty policies (anyone's roles, groups, users), which deleting a policy detaches it from
    unnamed = {
        "Api", "QueueMappings", "ReadQueueMappings", "Encryption", "FindLogGroups", "HandlerLookups",
        "TableServiceRoles", "FeatureGroupCatalog", "DetachDutyPoliciesBeforeDeletingThem",
        "AlarmTopicKey", "AlarmTopicKeyManagement", "AlarmTopicSubscriptions",
    }  # fmt: skip
    # KMS keys have generated ids: the alarm topic's key is reached by the stack's tag instead of its name
    tagged = {"AlarmTopicKey": "aws:RequestTag", "AlarmTopicKeyManagement": "aws:ResourceTag"}

    assert names == {
        "Stack": {"Fn::FindInMap": ["Environments", {"Ref": "Environment"}, "StackName"]},
        "Boundary": {"Ref": "RolesBoundary"},
    }
    for statement in (s for s in document["Statement"] if s["Effect"] == "Allow"):  # a Deny only narrows
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Sid"] not in unnamed:
            assert all("${Stack}" in r for r in resources), statement["Sid"]
        if statement["Sid"] in tagged:
            condition = statement["Condition"]["StringEquals"]
            assert condition == {f"{tagged[statement['Sid']]}/scratch-detector:stack": "${Stack}"}, statement["Sid"]
        elif resources == ["*"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            # read-only, conditioned, or actions that act on no resource type (the service authorization reference
            # allows only "*" for them: SNS's subscription calls) with no condition key to narrow them
            assert (
                "Condition" in statement
                or all(a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions)
                or all(kind.arn_format == "*" for a in actions for kind in catalog.resource_types(a))
            ), statement["Sid"]


@pytest.mark.parametrize(
    "name",
    [{"Ref": "ArtifactBucket"}, {"Fn::GetAtt": ["AuditTable", "Arn"]}, {"Fn::Sub": "${ImageRepository}-models"}],
    ids=["Ref", "GetAtt", "Sub"],
)
def test_a_name_destroy_cannot_resolve_is_an_error_naming_it_never_the_local_stacks_name(name: Any) -> None:
    # Given a template that names the model package group after another resource, whose name destroy does not know
    body = copy.deepcopy(Template.load().body)
    body["Resources"]["ModelPackageGroup"]["Properties"]["ModelPackageGroupName"] = name

    # When make destroy ENV=prod finds the names in an account of its own, Then it stops, naming the reference
    with pytest.raises(UnresolvedReference, match=r"no value for (ArtifactBucket|AuditTable\.Arn|ImageRepository)"):
        Names.of(environment("prod"), "210987654321", "eu-west-1", template=Template(body))


def test_destroy_finds_the_deployed_stacks_names_and_no_local_one() -> None:
    names = Names.of(environment("prod"), "210987654321", "eu-west-1")

    assert names.bucket == "scratch-detector-prod-210987654321"
    assert (names.repository, names.group, names.parameter) == (
        "scratch-detector-prod",
        "scratch-detector-prod",
        "/scratch-detector-prod/pipeline-config",
    )
    assert sorted(names.tables) == ["scratch-detector-prod-audit", "scratch-detector-prod-idempotency"]
    assert all(group.startswith("/scratch-detector-prod/") for group in names.log_groups)


def test_rollout_loads_nothing_of_the_local_stack() -> None:
    # Given every rollout module imported in a fresh process
    modules = sorted(p.stem for p in (ROOT / "rollout").glob("*.py") if p.stem != "__main__")
    code = (
        f"import sys, importlib; [importlib.import_module('rollout.' + m) for m in {modules}]; "
        "importlib.import_module('rollout.__main__'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'local'))"
    )
    # When it has loaded them, Then no module of the emulator came with them (only sam_stack, the kit)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""`make deploy`'s order against moto, with stand-ins for the two programs this machine cannot run for real:
`sam deploy` (creates the stack's outputs and repository, and refuses an image tag that is not in ECR, as
the sync function's custom resource does) and `docker` (a push puts the image in moto's ECR)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from local.emulator import REGION, reset_moto
from local.quotas import Quotas
from local.template import ACCOUNT, LOCAL_IMAGE_MANIFEST
from rollout import account, image
from rollout import deploy as rollout_deploy
from rollout.environments import Environment, RolloutError, environments

TAG = "0a1b2c3d4e5f"
# a stack's first deployment: create it without the pipeline, push the image, deploy with its tag
FIRST_DEPLOYMENT = [
    ["sam", "build"],
    ["sam", "deploy"],
    ["docker", "login"],
    ["docker", "build"],
    ["docker", "push"],
    ["sam", "deploy"],
]
OFFLINE = "s3://labels/offline-store/123456789012/sagemaker/us-east-1/offline-store/scratch-labels-1700000000/data"

FAKE_SAM = """
import json, shlex, sys, boto3
log, args = sys.argv[1], sys.argv[2:]
open(log, "a").write(json.dumps(["sam", *args]) + "\\n")
if args[0] != "deploy":
    raise SystemExit(0)
env = args[args.index("--config-env") + 1]
stack = {"default": "scratch-detector-dev", "prod": "scratch-detector-prod"}[env]
overrides = dict(item.split("=", 1) for item in shlex.split(args[args.index("--parameter-overrides") + 1]))
ecr, cfn = boto3.client("ecr"), boto3.client("cloudformation")
tag = overrides.get("ImageTag", "")
if tag:
    try:
        ecr.describe_images(repositoryName=stack, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        raise SystemExit(f"PipelineDefinition: image_uri: no image {stack}:{tag} in ECR")
try:
    ecr.create_repository(repositoryName=stack)
except ecr.exceptions.RepositoryAlreadyExistsException:
    pass
uri = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{stack}"
outputs = {
    "ApiUrl": f"https://a1b2c3.execute-api.{REGION}.amazonaws.com/{overrides['Environment']}",
    "PipelineName": stack, "ImageRepositoryUri": uri, "SlackSecretArn": "arn:aws:secretsmanager:::secret:SlackSecret-x",
}
body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                   "Outputs": {k: {"Value": v} for k, v in outputs.items()}})
try:
    cfn.describe_stacks(StackName=stack)
except Exception:
    cfn.create_stack(StackName=stack, TemplateBody=body)
"""

FAKE_DOCKER = """
import json, sys, boto3
log, args = sys.argv[1], sys.argv[2:]
stdin = sys.stdin.read() if "--password-stdin" in args else None
open(log, "a").write(json.dumps(["docker", *args, *(["<password>"] if stdin else [])]) + "\\n")
if args[0] == "push":
    repository, tag = args[1].split("/", 1)[1].split(":")
    boto3.client("ecr").put_image(repositoryName=repository, imageManifest=MANIFEST, imageTag=tag)
"""


@pytest.fixture
def tools(
    tmp_path: Path,
    aws_env: dict[str, str],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    service_quotas: Callable[[Quotas], Quotas],
) -> Path:
    """Fake sam and docker on PATH; the calls they got are in calls.jsonl. The account has the quotas it needs."""
    reset_moto(moto_endpoint)
    service_quotas(Quotas.generous())
    monkeypatch.setenv("AWS_REGION", REGION)
    log = tmp_path / "calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    header = f"ACCOUNT, REGION, MANIFEST = {ACCOUNT!r}, {REGION!r}, {LOCAL_IMAGE_MANIFEST!r}\n"
    for name, body in (("sam", FAKE_SAM), ("docker", FAKE_DOCKER)):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {bin_dir}/{name}.py {log} "$@"\n')
        script.chmod(0o755)
        (bin_dir / f"{name}.py").write_text(header + body)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setattr(image, "commit_tag", lambda: TAG)
    # the account's one-time set-up, done (test_a_fresh_account_... starts without it)
    account.setup(boto3.client("iam"), boto3.client("apigateway"))
    return tmp_path


def calls(tools: Path) -> list[list[str]]:
    path = tools / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def env(name: str) -> Environment:
    found = environments()[name]
    return dataclasses.replace(found, parameter_overrides={**found.parameter_overrides, "OfflineStoreUri": OFFLINE})


def deploy(
    tools: Path, name: str, promote_from: str | None = None, variant: str | None = None, *, ignore_quotas: bool = False
) -> None:
    rollout_deploy.deploy(
        env(name),
        boto3.Session(region_name=REGION),
        tools / "bin" / "sam",
        confirm=False,
        promote_from=promote_from,
        variant=variant,
        ignore_quotas=ignore_quotas,
    )


def test_a_first_deployment_creates_the_stack_then_pushes_the_image_then_deploys_with_its_tag(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(tools, "dev")

    made = calls(tools)
    assert [c[:2] for c in made] == FIRST_DEPLOYMENT
    bootstrap, final = made[1], made[5]
    assert "ImageTag" not in bootstrap[bootstrap.index("--parameter-overrides") + 1]
    assert f'ImageTag="{TAG}"' in final[final.index("--parameter-overrides") + 1]
    assert f'OfflineStoreUri="{OFFLINE}"' in final[final.index("--parameter-overrides") + 1]
    assert "--no-confirm-changeset" in final
    assert made[4][2] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-dev:{TAG}"
    # built for SageMaker's platform, as one manifest (no attestation index), whatever machine builds it
    assert made[3][2:9] == [
        "--platform", "linux/amd64", "--provenance=false", "--sbom=false", "--build-arg", "VARIANT=cpu", "--tag",
    ]  # fmt: skip
    assert made[2][-1] == "<password>"  # the registry password went through stdin, never the command line
    out = capsys.readouterr().out
    assert f"https://a1b2c3.execute-api.{REGION}.amazonaws.com/dev" in out
    assert "make start-run ENV=dev" in out


def test_the_gpu_image_is_built_with_its_variant_under_its_own_tag_and_the_stack_told_so(tools: Path) -> None:
    deploy(tools, "dev", variant="gpu")

    made = calls(tools)
    build, push, final = made[3], made[4], made[5]
    assert build[build.index("--build-arg") + 1] == "VARIANT=gpu"
    assert push[2] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-dev:{TAG}-gpu"
    overrides = final[final.index("--parameter-overrides") + 1]
    assert f'ImageTag="{TAG}-gpu"' in overrides
    assert 'ImageVariant="gpu"' in overrides
    # the CPU image of the same commit is another image: deploying it builds it
    deploy(tools, "dev")
    again = [c[:2] for c in calls(tools)[len(made) :]]
    assert again[-3:] == [["docker", "build"], ["docker", "push"], ["sam", "deploy"]]


@pytest.mark.parametrize(
    ("variable", "parameter", "value"),
    [
        # the runs the workflow's role starts are recorded as started from CI
        ("CI_ROLE_ARN", "CiRoleArn", "arn:aws:iam::123456789012:role/scratch-detector-github-dev-DeployRole-ABC"),
        # every role of the stack gets the workflow's permissions boundary
        ("ROLES_BOUNDARY_ARN", "PermissionsBoundaryArn", "arn:aws:iam::123456789012:policy/scratch-dev-roles-boundary"),
    ],
)  # fmt: skip
def test_the_deploy_workflows_settings_are_passed_to_the_stack(
    tools: Path, monkeypatch: pytest.MonkeyPatch, variable: str, parameter: str, value: str
) -> None:
    monkeypatch.delenv(variable, raising=False)
    deploy(tools, "dev")
    monkeypatch.setenv(variable, value)
    deploy(tools, "dev")

    first, second = [c for c in calls(tools) if c[:2] == ["sam", "deploy"]][-2:]
    assert parameter not in first[first.index("--parameter-overrides") + 1]  # from a laptop: left as it was
    assert f'{parameter}="{value}"' in second[second.index("--parameter-overrides") + 1]


def test_redeploying_a_commit_reuses_its_image(tools: Path) -> None:
    deploy(tools, "dev")
    before = len(calls(tools))

    deploy(tools, "dev")

    assert [c[:2] for c in calls(tools)[before:]] == [["sam", "build"], ["sam", "deploy"]]


def test_promotion_copies_the_image_dev_ran_into_prods_repository(tools: Path) -> None:
    deploy(tools, "dev")
    before = len(calls(tools))

    deploy(tools, "prod", promote_from="dev")

    made = calls(tools)[before:]
    docker = [c[1:3] for c in made if c[0] == "docker" and c[1] != "login"]
    dev_image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-dev:{TAG}"
    prod_image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-prod:{TAG}"
    assert docker == [["pull", dev_image], ["tag", dev_image], ["push", prod_image]]
    assert made[-1][made[-1].index("--config-env") + 1] == "prod"


def test_promoting_from_an_undeployed_dev_does_nothing(tools: Path) -> None:
    with pytest.raises(RolloutError, match="cannot promote from dev: its stack is not deployed"):
        deploy(tools, "prod", promote_from="dev")

    assert calls(tools) == []


def test_promoting_a_commit_dev_never_ran_does_nothing(tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy(tools, "dev")
    before = len(calls(tools))
    monkeypatch.setattr(image, "commit_tag", lambda: "5f4e3d2c1b0a")

    with pytest.raises(RolloutError, match="dev: it has no image of commit 5f4e3d2c1b0a; deploy it there first"):
        deploy(tools, "prod", promote_from="dev")

    assert calls(tools)[before:] == []


def test_samconfig_as_shipped_deploys_without_a_hand_copied_offline_store_uri(tools: Path) -> None:
    # the stack creates the feature group and the pipeline looks its offline store up: nothing to copy by hand
    shipped = environments()["dev"]
    assert "OfflineStoreUri" not in shipped.parameter_overrides

    rollout_deploy.deploy(shipped, boto3.Session(region_name=REGION), tools / "bin" / "sam", confirm=False)

    made = calls(tools)
    assert [c[:2] for c in made] == FIRST_DEPLOYMENT
    assert "OfflineStoreUri" not in made[5][made[5].index("--parameter-overrides") + 1]


def test_the_image_tag_is_the_commit_and_uncommitted_container_changes_are_refused(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@e",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e",
        }
        done = subprocess.run(["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    (tmp_path / "container").mkdir()
    (tmp_path / "container" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "README.md").write_text("x\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    assert image.commit_tag(tmp_path) == git("rev-parse", "HEAD")[:12]

    (tmp_path / "README.md").write_text("changed outside container/\n")
    assert image.commit_tag(tmp_path) == git("rev-parse", "HEAD")[:12]

    (tmp_path / "container" / "Dockerfile").write_text("FROM scratch\nUSER nobody\n")
    with pytest.raises(RolloutError, match=r"container/ has uncommitted changes(.|\n)*Dockerfile"):
        image.commit_tag(tmp_path)


def test_a_fresh_account_is_refused_before_anything_changes_with_the_command_that_fixes_it(
    tools: Path, moto_endpoint: str
) -> None:
    # Given an account whose API Gateway has no CloudWatch Logs role (the stage's logging needs one)
    reset_moto(moto_endpoint)

    # When deploying, Then nothing is built, created or pushed, and the message names the one command
    with pytest.raises(
        RolloutError, match=r"no CloudWatch Logs role.*Run once for this account and region: make account-setup"
    ):
        deploy(tools, "dev")
    assert calls(tools) == []
    assert boto3.client("cloudformation").list_stacks()["StackSummaries"] == []

    # When the account is set up (twice: the second finds nothing to do), Then the deployment goes through
    assert account.setup(boto3.client("iam"), boto3.client("apigateway")).startswith("API Gateway now logs through")
    assert account.setup(boto3.client("iam"), boto3.client("apigateway")).startswith("nothing to do")
    role = boto3.client("iam").get_role(RoleName=account.ROLE_NAME)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    deploy(tools, "dev")
    assert [c[:2] for c in calls(tools)][-1] == ["sam", "deploy"]


def test_an_account_short_of_a_sagemaker_quota_is_refused_before_anything_changes_unless_told_to_go_on(
    tools: Path, service_quotas: Callable[[Quotas], Quotas], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh account's quotas: none for ml.m5.large endpoints
    service_quotas(Quotas.aws_defaults())

    # When deploying, Then nothing is built, created or pushed, and the short quotas are named with their commands
    with pytest.raises(RolloutError, match=r"quotas are short.*ml\.m5\.large for endpoint usage.*QUOTAS=ignore"):
        deploy(tools, "dev")
    assert calls(tools) == []
    assert "--quota-code L-614B09FD --desired-value 2" in capsys.readouterr().out

    # When told to go on (make deploy QUOTAS=ignore), Then the deployment goes through
    deploy(tools, "dev", ignore_quotas=True)
    assert [c[:2] for c in calls(tools)][-1] == ["sam", "deploy"]


def test_a_stack_whose_first_creation_rolled_back_is_deleted_and_created_again(
    tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack left in ROLLBACK_COMPLETE by a failed first create (CloudFormation allows only its deletion)
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="scratch-detector-dev", TemplateBody=json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    )
    from moto.cloudformation.models import cloudformation_backends

    for stack in cloudformation_backends[ACCOUNT][REGION].stacks.values():
        stack.status = "ROLLBACK_COMPLETE"

    # When deploying
    deploy(tools, "dev")

    # Then it said so, deleted it, and created the stack from the start (the first deploy has no image tag)
    assert "ROLLBACK_COMPLETE" in capsys.readouterr().out
    [live] = cloudformation.describe_stacks(StackName="scratch-detector-dev")["Stacks"]
    assert live["StackStatus"] == "CREATE_COMPLETE"
    made = calls(tools)
    assert [c[:2] for c in made] == FIRST_DEPLOYMENT


def test_an_image_pushed_as_an_index_is_refused(tools: Path) -> None:
    # Given a push that produced an OCI index (a builder that added attestations)
    deploy(tools, "dev")
    ecr = boto3.client("ecr")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
    ecr.put_image(repositoryName="scratch-detector-dev", imageManifest=index, imageTag="indexed")

    # Then the check names what SageMaker needs
    with pytest.raises(RolloutError, match=r"pushed as application/vnd.oci.image.index.v1\+json.*linux/amd64"):
        image.check_manifest(ecr, f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-dev", "indexed")
    image.check_manifest(ecr, f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector-dev", TAG)


def test_a_rolled_back_stack_these_credentials_cannot_delete_is_named_with_the_command() -> None:
    from botocore.exceptions import ClientError

    class Refusing:
        def describe_stacks(self, StackName: str) -> dict[str, object]:
            return {"Stacks": [{"StackName": StackName, "StackStatus": "ROLLBACK_COMPLETE"}]}

        def delete_stack(self, StackName: str) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DeleteStack")

    with pytest.raises(RolloutError, match="aws cloudformation delete-stack --stack-name scratch-detector-dev"):
        rollout_deploy._clear_failed_create(Refusing(), "scratch-detector-dev")


def test_an_image_refused_by_the_manifest_check_is_refused_again_on_the_rerun(
    tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first deployment, and the next commit's image pushed as an index (the check refused it then; the tag
    # is immutable, so a rerun finds it "already in ECR")
    deploy(tools, "dev")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
    boto3.client("ecr").put_image(repositoryName="scratch-detector-dev", imageManifest=index, imageTag="indexed")
    monkeypatch.setattr(image, "commit_tag", lambda: "indexed")
    before = len(calls(tools))

    # When the deployment is run again, Then the image is refused before the stack is told to use it
    with pytest.raises(RolloutError, match=r"pushed as application/vnd.oci.image.index.v1\+json"):
        deploy(tools, "dev")
    assert [c[:2] for c in calls(tools)[before:] if c[0] == "sam" and c[1] == "deploy"] == []

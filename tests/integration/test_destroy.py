"""`make destroy`'s logic against moto: every resource kind the stack owns is created, then nothing is left,
and a second run finds nothing to do. What belongs to another stack is untouched."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from local.emulator import REGION, reset_moto
from local.template import ACCOUNT, LOCAL_IMAGE_MANIFEST
from rollout import __main__ as cli
from rollout.destroy import SAM_MANAGED_STACK, Destroyer, Names
from rollout.environments import RolloutError, environment

# moto's CloudFormation cannot create the template's SAM resources (or a secret): a queue stands in for them
STACK_TEMPLATE = json.dumps({"Resources": {"DeadLetterQueue": {"Type": "AWS::SQS::Queue"}}})
DEPLOYMENT_BUCKET = "aws-sam-cli-managed-default-samclisourcebucket-1a2b3c"
SAM_TEMPLATE = json.dumps(
    {
        "Resources": {"SourceBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": DEPLOYMENT_BUCKET}}},
        "Outputs": {"SourceBucket": {"Value": {"Ref": "SourceBucket"}}},
    }
)
PACKAGE_SPEC = {
    "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x:1"}],
    "SupportedContentTypes": ["image/jpeg"],
    "SupportedResponseMIMETypes": ["application/json"],
}


@pytest.fixture
def session(aws_env: dict[str, str], moto_endpoint: str) -> boto3.Session:
    reset_moto(moto_endpoint)
    return boto3.Session(region_name=REGION)


def deploy_everything(session: boto3.Session, names: Names) -> None:
    """What a deployed stack that has run and registered models leaves in the account."""
    services = ("cloudformation", "s3", "ecr", "sagemaker", "ssm", "logs", "dynamodb")
    aws: dict[str, Any] = {s: session.client(s) for s in services}  # type: ignore[call-overload]
    aws["cloudformation"].create_stack(StackName=names.stack, TemplateBody=STACK_TEMPLATE)
    # the retained, versioned bucket: run artefacts, overwritten and deleted objects
    aws["s3"].create_bucket(Bucket=names.bucket)
    aws["s3"].put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
    for body in (b"v1", b"v2"):
        aws["s3"].put_object(Bucket=names.bucket, Key="pipeline/run-a/train/model.tar.gz", Body=body)
    aws["s3"].put_object(Bucket=names.bucket, Key="pipeline/run-a/evaluate/evaluation.json", Body=b"{}")
    aws["s3"].delete_object(Bucket=names.bucket, Key="pipeline/run-a/evaluate/evaluation.json")
    # images under two commits' tags
    aws["ecr"].create_repository(repositoryName=names.repository, imageTagMutability="IMMUTABLE")
    for tag in ("0a1b2c3d4e5f", "5f4e3d2c1b0a"):
        aws["ecr"].put_image(repositoryName=names.repository, imageManifest=LOCAL_IMAGE_MANIFEST, imageTag=tag)
    # the registry: a group with two versions
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName=names.group)
    for _ in range(2):
        aws["sagemaker"].create_model_package(ModelPackageGroupName=names.group, InferenceSpecification=PACKAGE_SPEC)
    # the pipeline with an execution
    aws["sagemaker"].create_pipeline(
        PipelineName=names.pipeline,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{names.stack}-sagemaker",
    )
    aws["sagemaker"].start_pipeline_execution(PipelineName=names.pipeline)
    # the endpoint POST /models/{version}/deploy made, with the config and model of each deployment
    for version in (1, 2):
        name = f"{names.stack}-v{version}-0123abcd"
        aws["sagemaker"].create_model(
            ModelName=name,
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{names.stack}-sagemaker",
            PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x:1"},
        )
        aws["sagemaker"].create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
    aws["sagemaker"].create_endpoint(EndpointName=names.stack, EndpointConfigName=f"{names.stack}-v2-0123abcd")
    aws["ssm"].put_parameter(Name=names.parameter, Value="pipeline: {}", Type="String")
    for table in names.tables:
        aws["dynamodb"].create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    for group in names.log_groups:
        aws["logs"].create_log_group(logGroupName=group)
    # sam deploy's packages, in the bucket SAM CLI shares between stacks
    aws["cloudformation"].create_stack(StackName=SAM_MANAGED_STACK, TemplateBody=SAM_TEMPLATE)
    for key in (f"{names.s3_prefix}/a1b2.template", f"{names.s3_prefix}/c3d4"):
        aws["s3"].put_object(Bucket=DEPLOYMENT_BUCKET, Key=key, Body=b"package")


def deploy_a_neighbour(session: boto3.Session) -> None:
    """Another stack's things, with names that start like ours."""
    session.client("logs").create_log_group(logGroupName="/scratch-detector-dev2/lambda/api")
    session.client("s3").put_object(Bucket=DEPLOYMENT_BUCKET, Key="scratch-detector-dev2/e5f6", Body=b"package")
    session.client("s3").create_bucket(Bucket=f"scratch-detector-dev2-{ACCOUNT}")


def leftovers(session: boto3.Session, names: Names) -> list[str]:
    """Ask each service directly, not through the code under test."""
    s3, sm = session.client("s3"), session.client("sagemaker")
    found = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] == names.bucket]
    found += [r["repositoryName"] for r in session.client("ecr").describe_repositories()["repositories"]]
    found += [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    found += [g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]]
    found += [p["ModelPackageArn"] for p in sm.list_model_packages()["ModelPackageSummaryList"]]
    found += [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    found += [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    found += [m["ModelName"] for m in sm.list_models()["Models"]]
    found += [p["Name"] for p in session.client("ssm").describe_parameters()["Parameters"]]
    found += list(session.client("dynamodb").list_tables()["TableNames"])
    found += [
        g["logGroupName"]
        for g in session.client("logs").describe_log_groups()["logGroups"]
        if g["logGroupName"].startswith(f"/{names.stack}/")
    ]
    found += [
        s["StackName"]
        for s in session.client("cloudformation").describe_stacks()["Stacks"]
        if s["StackName"] == names.stack and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    secrets = session.client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
    found += [secret["Name"] for secret in secrets]
    listed = s3.list_objects_v2(Bucket=DEPLOYMENT_BUCKET, Prefix=f"{names.s3_prefix}/").get("Contents", [])
    return found + [o["Key"] for o in listed]


def test_destroy_leaves_nothing_of_the_stack_and_a_second_run_is_a_no_op(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = Names.of(environment("dev"), ACCOUNT, REGION)
    deploy_everything(session, names)
    deploy_a_neighbour(session)
    # moto's CloudFormation cannot hold a secret: the stack's Slack secret is made directly, and the stack's
    # resource list names it while the stack exists, as CloudFormation's does
    secret = session.client("secretsmanager").create_secret(Name=f"{names.stack}/slack", SecretString="{}")["ARN"]
    listed = Destroyer._stack_resources

    def with_secret(self: Destroyer, kind: str) -> list[str]:
        return [secret] if kind == "AWS::SecretsManager::Secret" else listed(self, kind)

    monkeypatch.setattr(Destroyer, "_stack_resources", with_secret)

    planned = Destroyer(names, session).inventory()
    deleted = Destroyer(names, session).run()

    assert leftovers(session, names) == []
    kinds = {line.split(":", 1)[0] for line in deleted}
    assert kinds == {
        "image",
        "model package",
        "endpoint",
        "endpoint config",
        "model",
        "stack",
        "pipeline",
        "model package group",
        "ECR repository",
        "SSM parameter",
        "bucket",
        "table",
        "log group",
        "deployment packages",
        "secret",
    }
    assert sorted(line.split(" (")[0] for line in planned) == sorted(line.split(" (")[0] for line in deleted)
    assert "pipeline: scratch-detector-dev (1 executions)" in planned
    # two versions of the model, the evaluation and its delete marker
    assert f"bucket: {names.bucket} (4 object versions)" in deleted
    assert len([line for line in deleted if line.startswith("log group:")]) == len(names.log_groups) == 8
    # the neighbour's things are still there
    s3 = session.client("s3")
    assert s3.get_object(Bucket=DEPLOYMENT_BUCKET, Key="scratch-detector-dev2/e5f6")["Body"].read() == b"package"
    assert s3.head_bucket(Bucket=f"scratch-detector-dev2-{ACCOUNT}")
    groups = session.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/scratch-detector-dev2/lambda/api"]

    # a second run: nothing to find, nothing deleted
    assert Destroyer(names, session).inventory() == []
    assert Destroyer(names, session).run() == []


def test_names_are_the_templates_resolved_for_the_stack() -> None:
    names = Names.of(environment("prod"), "210987654321", "eu-west-1")

    assert names.bucket == "scratch-detector-prod-210987654321"
    assert (names.repository, names.pipeline, names.group) == ("scratch-detector-prod",) * 3
    assert names.parameter == "/scratch-detector-prod/pipeline-config"
    assert names.tables == ("scratch-detector-prod-idempotency", "scratch-detector-prod-audit")
    assert all(g.startswith("/scratch-detector-prod/") for g in names.log_groups)


def test_destroy_asks_and_deletes_nothing_without_the_stack_name(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = Names.of(environment("dev"), ACCOUNT, REGION)
    deploy_everything(session, names)
    before = leftovers(session, names)
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")

    assert cli.main(["destroy", "--env", "dev"]) == 1

    assert leftovers(session, names) == before
    out = capsys.readouterr().out
    assert "stack: scratch-detector-dev" in out
    assert "nothing deleted" in out


def test_destroy_without_a_terminal_takes_no_answer_as_no(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = Names.of(environment("dev"), ACCOUNT, REGION)
    deploy_everything(session, names)
    before = leftovers(session, names)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    assert cli.main(["destroy", "--env", "dev"]) == 1

    assert leftovers(session, names) == before


def test_destroy_with_force_deletes_without_asking(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    names = Names.of(environment("dev"), ACCOUNT, REGION)
    deploy_everything(session, names)
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked"))

    assert cli.main(["destroy", "--env", "dev", "--force"]) == 0
    assert cli.main(["destroy", "--env", "dev", "--force"]) == 0

    assert leftovers(session, names) == []


def test_an_unknown_environment_is_named_with_the_known_ones() -> None:
    known = r"ENV=staging is not an environment of samconfig\.toml: use one of dev, prod"
    with pytest.raises(RolloutError, match=known):
        environment("staging")

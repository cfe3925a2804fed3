"""`make deploy ENV=dev|prod`: the stack, its training image and its pipeline, in the only order that works.

1. A stack that does not exist yet is created once without an image tag: everything but the config and the
   pipeline, so that its ECR repository exists.
2. The image of the current commit goes into that repository (built and pushed, or, when promoting, copied
   from the environment it ran in).
3. `sam deploy` with `ImageTag=<commit>`: the config names the image, and the sync function's custom resource
   builds the pipeline; it refuses an image that is not in ECR, so the stack never points at a missing one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from rollout import account, image, quotas
from rollout.environments import ROOT, Environment, RolloutError, environment
from rollout.stack import deployed, describe

# a stack in these states cannot be deployed to: a create that failed and rolled back can only be deleted
DELETABLE = {"ROLLBACK_COMPLETE"}
CI_ROLE_ENV = "CI_ROLE_ARN"
# the deploy workflow's permissions boundary (rollout/github-oidc.yaml's RolesBoundaryArn): its CloudFormation role
# creates roles only with it
BOUNDARY_ENV = "ROLES_BOUNDARY_ARN"


def deploy(
    env: Environment,
    session: boto3.Session,
    sam: Path,
    *,
    confirm: bool,
    promote_from: str | None = None,
    role_arn: str | None = None,
    variant: str | None = None,
    ignore_quotas: bool = False,
) -> None:
    cloudformation, ecr = session.client("cloudformation"), session.client("ecr")
    account.check(session.client("apigateway"), session.region_name)
    # the config's instance quotas, before anything changes: a short one fails runs and deploys later
    quotas.check(
        session.client("service-quotas"), session.region_name, config=quotas.load_config(), go_on=ignore_quotas
    )
    variant = variant or env.image_variant
    tag = image.variant_tag(image.commit_tag(), variant)
    source = _promoted_image(cloudformation, ecr, promote_from=promote_from, tag=tag) if promote_from else None
    build(sam, env)
    _clear_failed_create(cloudformation, env.stack_name)
    stack = deployed(cloudformation, env.stack_name)
    if stack is None:
        print(f"{env.stack_name} does not exist yet: creating it without a pipeline, so that its repository exists")
        _sam_deploy(sam, env, confirm=confirm, role_arn=role_arn, parameters=_boundary())
        stack = deployed(cloudformation, env.stack_name)
        if stack is None:
            raise RolloutError(f"{env.stack_name} was not created: see its events in the CloudFormation console")
    repository = stack.image_repository_uri
    if source:
        image.copy(ecr, source, repository_uri=repository, tag=tag)
    else:
        image.push(ecr, repository, tag=tag, variant=variant)
    parameters = {"ImageTag": tag, "ImageVariant": variant, **_ci_role(), **_boundary()}
    _sam_deploy(sam, env, confirm=confirm, role_arn=role_arn, parameters=parameters)
    print(
        f"\n{env.stack_name} is deployed with image {repository}:{tag}\n"
        f"  API:       {stack.api_url}\n"
        f"  pipeline:  {stack.pipeline_name}\n"
        f"  start a run:  make start-run ENV={env.name}\n"
        f"  or:           curl --aws-sigv4 aws:amz:{session.region_name}:execute-api \\\n"
        f'                  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \\\n'
        f'                  -H "x-amz-security-token: $AWS_SESSION_TOKEN" -H "Content-Type: application/json" \\\n'
        f"                  -d '{{}}' {stack.api_url}/runs\n"
        f"  Slack:     put the app's signing secret and bot token in {stack.slack_secret_arn}\n"
    )


def _clear_failed_create(cloudformation: Any, stack_name: str) -> None:
    """A first create that failed leaves the stack in ROLLBACK_COMPLETE, which CloudFormation only lets one
    delete; its bucket and audit table went with it (DeletionPolicy RetainExceptOnCreate), so a new create works."""
    stack = describe(cloudformation, stack_name)
    if stack is None:
        return
    status = stack["StackStatus"]
    if status.endswith("_IN_PROGRESS"):
        raise RolloutError(f"{stack_name} is {status}: wait until CloudFormation has finished, then deploy again")
    if status in DELETABLE:
        print(
            f"{stack_name} is {status} (its first creation failed and was rolled back): deleting it to create it anew"
        )
        try:
            cloudformation.delete_stack(StackName=stack_name)
        except ClientError as error:  # CI's deploy role may not delete stacks: a person does it once
            raise RolloutError(
                f"{stack_name} is {status} and cannot be deleted with these credentials "
                f"({error.response['Error']['Code']}): run `aws cloudformation delete-stack --stack-name {stack_name}`"
                ", then deploy again"
            ) from error
        cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack_name)


def _promoted_image(cloudformation: Any, ecr: Any, *, promote_from: str, tag: str) -> str:
    """The image this commit ran with in `promote_from`; checked before anything is built or deployed."""
    source = deployed(cloudformation, environment(promote_from).stack_name)
    if source is None:
        raise RolloutError(f"cannot promote from {promote_from}: its stack is not deployed")
    if not image.exists(ecr, source.image_repository_uri, tag):
        raise RolloutError(
            f"cannot promote from {promote_from}: it has no image of commit {tag}; deploy it there first"
        )
    return f"{source.image_repository_uri}:{tag}"


def _ci_role() -> dict[str, str]:
    """CiRoleArn when the deploy workflow passes its own role (CI_ROLE_ARN): the runs it starts are recorded as
    started from CI. A deploy from a laptop leaves the stack's value as it was."""
    role = os.environ.get(CI_ROLE_ENV, "")
    return {"CiRoleArn": role} if role else {}


def _boundary() -> dict[str, str]:
    """PermissionsBoundaryArn when the workflow names its boundary (ROLES_BOUNDARY_ARN); a deploy from a laptop by an
    administrator leaves the stack's value as it was."""
    boundary = os.environ.get(BOUNDARY_ENV, "")
    return {"PermissionsBoundaryArn": boundary} if boundary else {}


def build(sam: Path, env: Environment) -> None:
    """`sam build`: the functions and the layer into .aws-sam/ (the layer's own Makefile; no Docker)."""
    _sam(sam, "build", "--config-env", env.config_env)


def _sam_deploy(
    sam: Path, env: Environment, *, confirm: bool, role_arn: str | None, parameters: dict[str, str]
) -> None:
    confirmation = [] if confirm else ["--no-confirm-changeset"]
    role = ["--role-arn", role_arn] if role_arn else []
    overrides = env.overrides_argument(**parameters)
    _sam(sam, "deploy", "--config-env", env.config_env, "--parameter-overrides", overrides, *confirmation, *role)


def _sam(sam: Path, *args: str) -> None:
    subprocess.run([str(sam), *args], cwd=ROOT, check=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})  # noqa: S603

"""`python -m rollout [--env dev|prod] COMMAND [options]`: getting to AWS and away, what the Makefile's targets of
the same names run. `python -m rollout COMMAND --help` gives a command's options."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline_def import command_line
from rollout.environments import Environment, RolloutError, environment

if TYPE_CHECKING:
    import boto3


class Command(NamedTuple):
    help: str
    run: Callable[[Environment, boto3.Session, argparse.Namespace], int]
    options: Callable[[argparse.ArgumentParser], None] = lambda _: None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import boto3  # after parsing: --help and a wrong command answer without it

    try:
        return COMMANDS[args.command].run(environment(args.env), boto3.Session(), args)
    except RolloutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd[:2]))} exited with {error.returncode}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rollout",
        description="Getting to AWS and away: what the Makefile's targets of the same names run.",
        epilog="python -m rollout COMMAND --help shows the command's options.",
    )
    parser.add_argument("--env", default="dev", help="samconfig.toml environment: dev (default) or prod")
    # the same option after the command too (`python -m rollout destroy --env prod`), without its default
    # overwriting the one given before the command
    env_after = command_line.CommandParser(add_help=False)
    env_after.add_argument("--env", default=argparse.SUPPRESS, help="samconfig.toml environment: dev or prod")
    commands = command_line.commands(parser)
    for name, command in COMMANDS.items():
        command.options(commands.add_parser(name, parents=[env_after], help=command.help, description=command.help))
    return parser


def _sam_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sam", type=Path, default=Path(".tools/sam/bin/sam"), help="the sam executable")


def _build_options(parser: argparse.ArgumentParser) -> None:
    _sam_option(parser)


def _build(env: Environment, _: boto3.Session, args: argparse.Namespace) -> int:
    from rollout.deploy import build

    build(args.sam, env)
    return 0


def _deploy_options(parser: argparse.ArgumentParser) -> None:
    _sam_option(parser)
    parser.add_argument("--no-confirm", action="store_true", help="deploy without reviewing the change set (CI)")
    parser.add_argument("--role-arn", help="the role CloudFormation deploys with (rollout/github-oidc.yaml)")
    parser.add_argument("--gpu", action="store_true", help="the GPU image (ImageVariant gpu)")
    parser.add_argument("--ignore-quotas", action="store_true", help="go on when a SageMaker quota is short")
    parser.add_argument("--promote-from", metavar="FROM_ENV", help="copy the commit's image from this environment")


def _deploy(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    from rollout.deploy import deploy

    deploy(
        env,
        session,
        args.sam,
        confirm=not args.no_confirm,
        promote_from=args.promote_from,
        role_arn=args.role_arn,
        variant="gpu" if args.gpu else None,
        ignore_quotas=args.ignore_quotas,
    )
    return 0


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", action="store_true", help="the GPU image (ImageVariant gpu)")


def _image(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    from rollout import image
    from rollout.stack import deployed

    stack = deployed(session.client("cloudformation"), env.stack_name)
    if stack is None:
        raise RolloutError(f"{env.stack_name} has no image repository yet: `make deploy ENV={env.name}` creates it")
    variant = "gpu" if args.gpu else env.image_variant
    tag = image.variant_tag(image.commit_tag(), variant)
    print(image.push(session.client("ecr"), stack.image_repository_uri, tag=tag, variant=variant))
    return 0


def _account_setup(_: Environment, session: boto3.Session, __: argparse.Namespace) -> int:
    from rollout import account, quotas

    print(account.setup(session.client("iam"), session.client("apigateway")))
    # quotas are the account's too: listed here with the commands that request what is short
    quotas.check(session.client("service-quotas"), session.region_name, config=quotas.load_config(), go_on=True)
    return 0


def _start_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idempotency-key", help="the same key starts one run (CI uses the commit)")
    parser.add_argument("--description", default="started with make start-run", help="the run's description")


def _start_run(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    from rollout.start_run import start_run

    start_run(env, session, idempotency_key=args.idempotency_key, description=args.description)
    return 0


def _ingest_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", metavar="PATH", type=Path, help="a label export (file or folder) and its images (needed)"
    )
    parser.add_argument("--format", help="the export's format (csv, coco, voc, yolo, groundtruth; default detected)")


def _ingest(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    from rollout.ingest import ingest

    if args.dataset is None:
        raise RolloutError("ingest needs DATASET=path (a label export, or the folder holding it, and its images)")
    return ingest(env, session, args.dataset, kind=args.format)


def _destroy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="delete without asking")


def _destroy(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    return destroy(env, session, args.force)


# each command's exit code: 0 done, 1 not done (ingest: some rows refused; destroy: not confirmed), ingest 2: the
# export cannot be read, ingest 3: the offline store does not hold every record put in time; 2 for a usage error
COMMANDS: dict[str, Command] = {
    "build": Command("sam build: the functions and the layer into .aws-sam/", _build, _build_options),
    "deploy": Command(
        "build, push the commit's image, sam deploy the environment; prints the API URL", _deploy, _deploy_options
    ),
    "image": Command(
        "docker build container/, tag it with the git commit, push it to the environment's ECR repository",
        _image,
        _image_options,
    ),
    "start-run": Command(
        "start a training run through the deployed API (IAM-signed) and print its links", _start_run, _start_run_options
    ),
    "ingest": Command(
        "put a label export and its images into the environment's bucket and feature group", _ingest, _ingest_options
    ),
    "destroy": Command(
        "delete the stack and all it leaves (bucket, images, models, logs); asks first", _destroy, _destroy_options
    ),
    "account-setup": Command(
        "once per account and region: API Gateway's CloudWatch Logs role; lists the SageMaker quotas",
        _account_setup,
    ),
}


def destroy(env: Environment, session: boto3.Session, force: bool) -> int:
    from rollout.destroy import Destroyer, Names

    account = session.client("sts").get_caller_identity()["Account"]
    destroyer = Destroyer(Names.of(env, account, session.region_name), session)
    found = destroyer.inventory()
    if not found:
        print(f"nothing of {env.stack_name} is left in account {account}, {session.region_name}")
        return 0
    print(f"make destroy will delete, in account {account}, {session.region_name}:")
    print("\n".join(f"  {line}" for line in found))
    if not force and _answer(f"Type the stack name ({env.stack_name}) to delete all of this: ") != env.stack_name:
        print("nothing deleted")
        return 1
    deleted = destroyer.run()
    print("deleted:")
    print("\n".join(f"  {line}" for line in deleted) or "  nothing")
    return 0


def _answer(prompt: str) -> str:
    try:
        return input(prompt).strip()
    except EOFError:  # no terminal (a pipe, CI): no answer, so no
        return ""


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m rollout build|deploy|image|start-run|ingest|destroy|account-setup --env dev|prod`: what the
Makefile's targets of the same names run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3

from rollout import account, image, quotas
from rollout.deploy import build, deploy
from rollout.destroy import Destroyer, Names
from rollout.environments import Environment, RolloutError, environment
from rollout.ingest import ingest
from rollout.stack import deployed
from rollout.start_run import start_run


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](environment(args.env), boto3.Session(), args)
    except RolloutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd[:2]))} exited with {error.returncode}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rollout")
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("--env", default="dev", help="samconfig.toml environment: dev or prod")
    parser.add_argument("--sam", type=Path, default=Path(".tools/sam/bin/sam"), help="the sam executable")
    parser.add_argument("--no-confirm", action="store_true", help="deploy without reviewing the change set (CI)")
    parser.add_argument("--role-arn", help="deploy: the role CloudFormation deploys with (rollout/github-oidc.yaml)")
    parser.add_argument("--gpu", action="store_true", help="image, deploy: the GPU image (ImageVariant gpu)")
    parser.add_argument("--ignore-quotas", action="store_true", help="deploy: go on when a SageMaker quota is short")
    parser.add_argument("--promote-from", help="deploy: copy the commit's image from this environment's repository")
    parser.add_argument("--idempotency-key", help="start-run: the same key starts one run (CI uses the commit)")
    parser.add_argument("--description", default="started with make start-run", help="start-run: the run's description")
    parser.add_argument("--force", action="store_true", help="destroy without asking")
    parser.add_argument("--dataset", type=Path, help="ingest: a label export (file or folder) and its images")
    parser.add_argument(
        "--format", help="ingest: the export's format (csv, coco, voc, yolo, groundtruth; default detected)"
    )
    return parser


def _build(env: Environment, _: boto3.Session, args: argparse.Namespace) -> int:
    build(args.sam, env)
    return 0


def _deploy(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
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


def _image(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    stack = deployed(session.client("cloudformation"), env.stack_name)
    if stack is None:
        raise RolloutError(f"{env.stack_name} has no image repository yet: `make deploy ENV={env.name}` creates it")
    variant = "gpu" if args.gpu else env.image_variant
    tag = image.variant_tag(image.commit_tag(), variant)
    print(image.push(session.client("ecr"), stack.image_repository_uri, tag=tag, variant=variant))
    return 0


def _account_setup(_: Environment, session: boto3.Session, __: argparse.Namespace) -> int:
    print(account.setup(session.client("iam"), session.client("apigateway")))
    # quotas are the account's too: listed here with the commands that request what is short
    quotas.check(session.client("service-quotas"), session.region_name, config=quotas.load_config(), go_on=True)
    return 0


def _start_run(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    start_run(env, session, idempotency_key=args.idempotency_key, description=args.description)
    return 0


def _ingest(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    if args.dataset is None:
        raise RolloutError("ingest needs DATASET=path (a label export, or the folder holding it, and its images)")
    return ingest(env, session, args.dataset, kind=args.format)


def _destroy(env: Environment, session: boto3.Session, args: argparse.Namespace) -> int:
    return destroy(env, session, args.force)


# each command's exit code: 0 done, 1 not done (ingest: some rows refused; destroy: not confirmed), ingest 2: the
# export cannot be read, ingest 3: the offline store does not hold every record put in time
COMMANDS: dict[str, Callable[[Environment, boto3.Session, argparse.Namespace], int]] = {
    "build": _build,
    "deploy": _deploy,
    "image": _image,
    "start-run": _start_run,
    "ingest": _ingest,
    "destroy": _destroy,
    "account-setup": _account_setup,
}


def destroy(env: Environment, session: boto3.Session, force: bool) -> int:
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

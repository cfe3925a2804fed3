"""`python -m rollout build|deploy|image|start-run|ingest|destroy|account-setup --env dev|prod`: what the
Makefile's targets of the same names run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import boto3

from rollout import account, image
from rollout.deploy import build, deploy
from rollout.destroy import Destroyer, Names
from rollout.environments import Environment, RolloutError, environment
from rollout.ingest import ingest
from rollout.stack import deployed
from rollout.start_run import start_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollout")
    parser.add_argument(
        "command", choices=["build", "deploy", "image", "start-run", "ingest", "destroy", "account-setup"]
    )
    parser.add_argument("--env", default="dev", help="samconfig.toml environment: dev or prod")
    parser.add_argument("--sam", type=Path, default=Path(".tools/sam/bin/sam"), help="the sam executable")
    parser.add_argument("--no-confirm", action="store_true", help="deploy without reviewing the change set (CI)")
    parser.add_argument("--role-arn", help="deploy: the role CloudFormation deploys with (rollout/github-oidc.yaml)")
    parser.add_argument("--gpu", action="store_true", help="image, deploy: the GPU image (ImageVariant gpu)")
    parser.add_argument("--promote-from", help="deploy: copy the commit's image from this environment's repository")
    parser.add_argument("--idempotency-key", help="start-run: the same key starts one run (CI uses the commit)")
    parser.add_argument("--description", default="started with make start-run", help="start-run: the run's description")
    parser.add_argument("--force", action="store_true", help="destroy without asking")
    parser.add_argument("--dataset", type=Path, help="ingest: a folder with labels.csv and its images")
    args = parser.parse_args(argv)
    try:
        env = environment(args.env)
        session = boto3.Session()
        if args.command == "build":
            build(args.sam, env)
        elif args.command == "deploy":
            deploy(
                env,
                session,
                args.sam,
                confirm=not args.no_confirm,
                promote_from=args.promote_from,
                role_arn=args.role_arn,
                variant="gpu" if args.gpu else None,
            )
        elif args.command == "image":
            stack = deployed(session.client("cloudformation"), env.stack_name)
            if stack is None:
                raise RolloutError(
                    f"{env.stack_name} has no image repository yet: `make deploy ENV={env.name}` creates it"
                )
            variant = "gpu" if args.gpu else env.image_variant
            tag = image.variant_tag(image.commit_tag(), variant)
            print(image.push(session.client("ecr"), stack.image_repository_uri, tag, variant))
        elif args.command == "account-setup":
            print(account.setup(session.client("iam"), session.client("apigateway")))
        elif args.command == "start-run":
            start_run(env, session, args.idempotency_key, args.description)
        elif args.command == "ingest":
            if args.dataset is None:
                raise RolloutError("ingest needs DATASET=dir (a folder with labels.csv and its images)")
            return ingest(env, session, args.dataset)
        else:
            return destroy(env, session, args.force)
    except RolloutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd[:2]))} exited with {error.returncode}", file=sys.stderr)
        return 1
    return 0


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

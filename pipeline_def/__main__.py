"""`python -m pipeline_def build|show|diff|upsert [--config FILE | --ssm-parameter NAME]`, `... hyperparameters`.

build   prints the definition JSON (exit 0; 2 for an invalid config)
show    prints the steps, their order and the run-time parameters with their defaults
diff    shows what would change in the deployed pipeline (exit 0 unchanged, 1 changes, 2 invalid config)
upsert  creates or updates the pipeline only when it differs (exit 0; 2 for an invalid config)
hyperparameters
        lists every hyperparameter (run parameter, default, limits, help); --write rewrites the image's copy,
        container/detector/hyperparameters.json

AWS access (diff, upsert, --ssm-parameter) uses boto3's usual credentials, region and endpoint settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline_def import command_line, hyperparameters
from pipeline_def.config import DEFAULT_CONFIG_PATH, ConfigError, PipelineConfig
from pipeline_def.definition import build_definition

EXIT_CHANGES, EXIT_INVALID_CONFIG, EXIT_AWS_ERROR = 1, 2, 3
_DONE = {"create": "created", "update": "updated", "none": "unchanged"}
_PLANNED = {"create": "would be created", "update": "would be updated", "none": "unchanged"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_def",
        description="The pipeline config to the SageMaker pipeline definition JSON, and that JSON to SageMaker.",
        epilog="python -m pipeline_def COMMAND --help shows the command's options.",
    )
    commands = command_line.commands(parser)
    for name, text in (
        ("build", "print the pipeline definition JSON"),
        ("show", "print the steps and the run-time parameters"),
        ("diff", "show what would change in the deployed pipeline"),
        ("upsert", "create or update the pipeline only when it differs"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        source = command.add_mutually_exclusive_group()
        source.add_argument(
            "--config", metavar="FILE", type=Path, default=DEFAULT_CONFIG_PATH, help="pipeline config YAML file"
        )
        source.add_argument("--ssm-parameter", metavar="NAME", help="read the config text from this SSM parameter")
    text = "list the hyperparameters; --write rewrites the image's declaration of them"
    listing = commands.add_parser("hyperparameters", help=text, description=text)
    listing.add_argument("--write", action="store_true", help=f"rewrite {hyperparameters.CONTAINER_SPEC.name}")
    return parser


def _hyperparameters(write: bool) -> int:
    if write:
        hyperparameters.CONTAINER_SPEC.write_text(hyperparameters.container_spec_text(), encoding="utf-8")
        print(f"wrote {hyperparameters.CONTAINER_SPEC}")
        return 0
    sys.stdout.write(hyperparameters.table())
    return 0


def _load(args: argparse.Namespace) -> PipelineConfig:
    if args.ssm_parameter:
        import boto3

        text = boto3.client("ssm").get_parameter(Name=args.ssm_parameter)["Parameter"]["Value"]
        return PipelineConfig.from_yaml(text, source=f"ssm:{args.ssm_parameter}")
    return PipelineConfig.from_file(args.config)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hyperparameters":
        return _hyperparameters(args.write)
    aws_errors: tuple[type[Exception], ...] = ()
    if args.ssm_parameter or args.command != "build":  # botocore only where AWS is called: build stays fast
        from botocore.exceptions import BotoCoreError, ClientError

        aws_errors = (BotoCoreError, ClientError)
    try:
        config = _load(args)
        if args.command == "build":
            sys.stdout.write(build_definition(config) + "\n")
            return 0
        if args.command == "show":
            sys.stdout.write(_summary(config))
            return 0
        return _deploy(args.command, config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID_CONFIG
    except aws_errors as exc:
        print(f"AWS error: {exc}", file=sys.stderr)
        return EXIT_AWS_ERROR


def _summary(config: PipelineConfig) -> str:
    text = build_definition(config)
    document = json.loads(text)
    lines = [f"pipeline {config.pipeline.name}: {len(text)} bytes of definition JSON", "steps:"]

    def walk(steps: list[dict[str, Any]], indent: str) -> None:
        for step in steps:
            lines.append(f"{indent}{step['Name']} ({step['Type']}): {step.get('Description', '')}")
            if step["Type"] == "Condition":
                floor = config.evaluation.map_threshold
                lines.append(f"{indent}  if mAP >= MapThreshold and mAP >= {floor} (evaluation.map_threshold):")
                walk(step["Arguments"]["IfSteps"], indent + "    ")
                lines.append(f"{indent}  else:")
                walk(step["Arguments"]["ElseSteps"], indent + "    ")

    walk(document["Steps"], "  ")
    lines.append("run-time parameters (override per run):")
    lines.extend(f"  {p['Name']} = {p['DefaultValue']!r} ({p['Type']})" for p in document["Parameters"])
    lines.append(f"outputs: {config.storage.root}/{config.pipeline.name}/<execution id>/<step>/<output>")
    return "\n".join(lines) + "\n"


def _deploy(command: str, config: PipelineConfig) -> int:
    import boto3

    from pipeline_def import deploy

    client = boto3.client("sagemaker")
    planned = deploy.plan(client, config) if command == "diff" else deploy.upsert(client, config)
    verb = (_PLANNED if command == "diff" else _DONE)[planned.action]
    sys.stdout.write(planned.definition_diff)
    for setting in planned.changed_settings:
        print(f"setting changed: {setting}")
    print(f"pipeline {planned.pipeline_name}: {verb}")
    return EXIT_CHANGES if command == "diff" and planned.action != "none" else 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench-lambda`: each function as `sam build` packages it, with its layer.

- Cold import: a fresh interpreter that sees only what Lambda would (the function's folder, the built layer,
  and the runtime's own boto3/botocore) imports `app`, with the template's environment and tracing on.
  Median of several starts. Target: under 300 ms. Baseline, measured in the same run: the runtime floor,
  a fresh interpreter importing boto3 and creating one client, which any Python function that calls AWS pays.
  A second baseline is the least a function on our chosen stack imports (Powertools' Logger, Tracer,
  Metrics, a validating resolver with one route, pydantic, boto3): the "x stack" column is ours against it.
  Clients are created on first use; the "+ clients" column is the import plus the clients a function's
  first request creates, so that deferring them is not mistaken for saving them.
- Deployment size: the function's folder plus the layer, unzipped. Target: under 15 MB.
- The Slack click handler's acknowledgement, cold and warm, on the local stack (bench/slack_click.py).
  Target: cold p99 under 1 s, against the same runtime floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import slack_click
from local.template import local_values
from sam_stack.template import Template

REPO = Path(__file__).resolve().parent.parent
SAM = REPO / ".tools" / "sam" / "bin" / "sam"
TARGET_MS, TARGET_MB = 300.0, 15.0
# what the python3.11 Lambda runtime provides: the layer leaves these out (layers/common/Makefile)
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")

IMPORT_APP = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
# Clients are created on first use, so a function's first request also pays for these: shown beside the import
FIRST_CLIENTS = (
    "import time; t = time.perf_counter(); import app; from control_plane.aws.clients import client; "
    "[client(s) for s in {services!r}]; print((time.perf_counter() - t) * 1000)"
)
# The least a function built on our chosen stack imports: Powertools' Logger, Tracer and Metrics, a resolver
# with validation and one typed route, and boto3. What our functions add is measured against this.
STACK_FLOOR = (
    "import time; t = time.perf_counter(); import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "from pydantic import BaseModel\n"
    "logger, tracer, metrics = Logger(), Tracer(), Metrics()\n"
    "app = APIGatewayRestResolver(enable_validation=True)\n"
    "class Hello(BaseModel):\n    name: str\n"
    "@app.post('/hello')\ndef hello(body: Hello) -> Hello:\n    return body\n"
    "print((time.perf_counter() - t) * 1000)"
)
SERVICES = {
    "ApiFunction": ["sagemaker", "dynamodb", "ssm"],
    "AutoDeployFunction": ["sagemaker", "dynamodb", "ssm"],
    "NotifyFunction": ["sagemaker", "dynamodb", "secretsmanager"],
    "ScheduledStartFunction": ["sagemaker", "dynamodb", "ssm", "s3"],
    "SlackActionsFunction": ["ssm", "secretsmanager", "sqs"],
    "SlackDecisionsFunction": ["sagemaker", "dynamodb", "secretsmanager"],
    "SyncDefinitionFunction": ["sagemaker", "ssm", "secretsmanager"],
}
IMPORT_FLOOR = (
    "import time; t = time.perf_counter(); import boto3; boto3.client('sts'); print((time.perf_counter() - t) * 1000)"
)


def build(build_dir: Path) -> None:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    subprocess.run(
        [str(SAM), "build", "--template-file", str(REPO / "template.yaml"), "--build-dir", str(build_dir)],
        check=True,
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def runtime_dir(into: Path) -> Path:
    """A folder holding only the runtime's packages, linked from .venv, as /var/runtime holds them in Lambda."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    into.mkdir()
    for name in RUNTIME_PACKAGES:
        (into / name).symlink_to(site / name)
    return into


def size_mb(*folders: Path) -> float:
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file()) / 1e6


@dataclass(frozen=True)
class Probe:
    """One thing to time: `code` run in a fresh interpreter that sees only `path` and the standard library."""

    name: str
    code: str
    cwd: Path
    path: list[Path]
    env: dict[str, str]

    def once(self) -> float:
        done = subprocess.run(
            [sys.executable, "-S", "-c", self.code],
            cwd=self.cwd,
            env={**self.env, "PYTHONPATH": os.pathsep.join(str(p) for p in self.path)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{self.name} failed:\n{done.stderr}")
        return float(done.stdout.strip().splitlines()[-1])


def medians(probes: list[Probe], rounds: int) -> dict[str, float]:
    """Rounds that run every probe once each, so that the machine's slow moments fall on all of them alike."""
    samples: dict[str, list[float]] = {probe.name: [] for probe in probes}
    for _ in range(rounds):
        for probe in probes:
            samples[probe.name].append(probe.once())
    return {name: statistics.median(values) for name, values in samples.items()}


def lambda_like_env(function: str, template: Template) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "LAMBDA_TASK_ROOT": "/var/task",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        # /var/task and /opt are read-only in Lambda: nothing compiled at one start helps the next
        "PYTHONDONTWRITEBYTECODE": "1",
        **template.environment(function, local_values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=9, help="rounds of fresh interpreters (median)")
    parser.add_argument("--click-starts", type=int, default=30, help="cold starts of the Slack click handler")
    parser.add_argument("--warm-clicks", type=int, default=20, help="clicks after each cold one")
    args = parser.parse_args()
    template = Template.load()
    functions = sorted(template.of_type("AWS::Serverless::Function"))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        build_dir = Path(tmp) / "build"
        build(build_dir)
        layer = build_dir / "CommonLayer" / "python"
        runtime = runtime_dir(Path(tmp) / "runtime")
        base_env = lambda_like_env(functions[0], template)
        probes = [
            Probe("floor", IMPORT_FLOOR, Path(tmp), [runtime], base_env),
            Probe("stack", STACK_FLOOR, Path(tmp), [layer, runtime], base_env),
        ]
        for function in functions:
            code, env = build_dir / function, lambda_like_env(function, template)
            probes.append(Probe(function, IMPORT_APP, code, [code, layer, runtime], env))
            first = FIRST_CLIENTS.format(services=SERVICES[function])
            probes.append(Probe(f"{function}+clients", first, code, [code, layer, runtime], env))
        ms = medians(probes, args.starts)
        floor, stack_floor = ms["floor"], ms["stack"]
        print(f"baseline (runtime floor: import boto3 + one client): {floor:.0f} ms")
        print(
            f"baseline (Powertools floor: Logger, Tracer, Metrics, a validating resolver, boto3): {stack_floor:.0f} ms"
        )
        print(
            f"{'function':<26} {'cold import':>12} {'x floor':>8} {'x stack':>8} {'vs 300 ms':>10} {'+ clients':>10} "
            f"{'size':>9} {'vs 15 MB':>9}"
        )
        for function in functions:
            mb = size_mb(build_dir / function, layer)
            own = ms[function]
            ok = own < TARGET_MS and mb < TARGET_MB
            failed |= not ok
            print(
                f"{function:<26} {own:>9.0f} ms {own / floor:>7.2f}x {own / stack_floor:>7.2f}x "
                f"{own / TARGET_MS:>9.2f}x {ms[function + '+clients']:>7.0f} ms "
                f"{mb:>6.2f} MB {mb / TARGET_MB:>8.2f}x {'' if ok else ' OVER TARGET'}"
            )
        click_code = build_dir / slack_click.FUNCTION
        acks = slack_click.measure(
            click_code,
            [click_code, layer, runtime],
            lambda_like_env(slack_click.FUNCTION, template),
            starts=args.click_starts,
            warm_clicks=args.warm_clicks,
            work=Path(tmp),
        )
        failed |= not slack_click.report(acks, floor)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

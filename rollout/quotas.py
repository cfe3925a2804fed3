"""The SageMaker instance quotas the config needs, against what the account has (Service Quotas, ServiceCode sagemaker).

A fresh account has 0 for most instance types and usages, and SageMaker refuses a job or an endpoint over a quota
(ResourceLimitExceeded) only when the run or the deploy reaches it. `make account-setup` lists the quotas; `make deploy`
lists them too and refuses, before it changes anything, when one is short (QUOTAS=ignore goes on).

A run's jobs run one after the other, so a quota needs the most instances one of its jobs asks for; the endpoint needs
twice its instances, because deploying a new version updates it blue/green (the new fleet beside the old one). A
training job and the endpoint must also fit the account's most instances per job and per endpoint.
An account that has applied no value to a quota has AWS's default for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline_def.config import PipelineConfig
from rollout.environments import ROOT, RolloutError
from sam_stack import quotas as sagemaker_quotas
from sam_stack.quotas import SERVICE_CODE, Demand

CONFIG = ROOT / "config" / "pipeline.yaml"
IGNORE_OPTION = "QUOTAS=ignore"


@dataclass(frozen=True)
class Need:
    name: str
    instances: int
    why: str


@dataclass(frozen=True)
class Standing:
    """A quota the config needs and what the account has of it (None: no such quota, SageMaker refuses the type)."""

    need: Need
    code: str | None
    value: float | None

    @property
    def short(self) -> bool:
        return self.value is None or self.value < self.need.instances

    @property
    def command(self) -> str:
        return (
            f"aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
            f"--quota-code {self.code} --desired-value {self.need.instances}"
        )

    def line(self) -> str:
        have = "no such quota" if self.value is None else f"{self.value:g}"
        mark = "SHORT" if self.short else "ok"
        return f"  {mark:5} {self.need.name}: needs {self.need.instances}, has {have} ({self.need.why})"


def needs(config: PipelineConfig) -> list[Need]:
    """Every quota the config's jobs and endpoint count against, with the most instances any one of them holds."""
    spot = config.training.spot.enabled
    training = sagemaker_quotas.SPOT_TRAINING if spot else sagemaker_quotas.TRAINING
    deployment = config.deployment
    demands = [
        (
            "Preprocess",
            Demand(sagemaker_quotas.PROCESSING, config.preprocess.instance_type, config.preprocess.instance_count),
        ),
        (
            "Train" + (", spot" if spot else ""),
            Demand(training, config.training.instance_type, config.training.instance_count),
        ),
        (
            "Evaluate",
            Demand(sagemaker_quotas.PROCESSING, config.evaluation.instance_type, config.evaluation.instance_count),
        ),
        (
            "endpoint, both fleets of an update",
            Demand(sagemaker_quotas.ENDPOINT, deployment.instance_type, 2 * deployment.instance_count),
        ),
    ]
    # the most one training job or one endpoint may have: its own instances (an update's new fleet is another's)
    per_request = [
        (sagemaker_quotas.PER_REQUEST[training], config.training.instance_count, "Train"),
        (sagemaker_quotas.PER_REQUEST[sagemaker_quotas.ENDPOINT], deployment.instance_count, "endpoint"),
    ]
    found: dict[str, Need] = {}
    wanted = [(name, d.count, f"{why}: {d.count} x {d.instance_type}") for why, d in demands for name in d.quotas]
    for name, count, why in [*per_request, *wanted]:
        if name not in found or count > found[name].instances:
            found[name] = Need(name, count, why)
    return list(found.values())


def standing(service_quotas: Any, wanted: list[Need]) -> list[Standing]:
    """What the account has of each quota: its applied value, or AWS's default when it has none applied."""
    paginator = service_quotas.get_paginator("list_aws_default_service_quotas")
    defaults = {
        quota["QuotaName"]: quota for page in paginator.paginate(ServiceCode=SERVICE_CODE) for quota in page["Quotas"]
    }
    found = []
    for need in wanted:
        default = defaults.get(need.name)
        if default is None:
            found.append(Standing(need, None, None))
            continue
        code = str(default["QuotaCode"])
        try:
            value = float(service_quotas.get_service_quota(ServiceCode=SERVICE_CODE, QuotaCode=code)["Quota"]["Value"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchResourceException":
                raise
            value = float(default["Value"])
        found.append(Standing(need, code, value))
    return found


def report(standings: list[Standing], region: str) -> str:
    lines = [f"SageMaker quotas the config needs, in {region}:", *(s.line() for s in standings)]
    short = [s for s in standings if s.short]
    for item in short:
        if item.code is None:
            lines.append(f"{item.need.name}: Service Quotas has no such quota; choose another instance type")
        else:
            lines.append(f"{item.need.name} is short; request an increase with:\n  {item.command}")
    return "\n".join(lines)


def load_config() -> PipelineConfig:
    return PipelineConfig.from_yaml(CONFIG.read_text(), source=str(CONFIG))


def check(service_quotas: Any, region: str, *, config: PipelineConfig, go_on: bool = False) -> list[Standing]:
    """Print the quotas the config needs; refuse (RolloutError naming them) when one is short, unless `go_on`."""
    standings = standing(service_quotas, needs(config))
    print(report(standings, region))
    short = [s.need.name for s in standings if s.short]
    if short and not go_on:
        raise RolloutError(
            f"the account's SageMaker quotas are short for this config: {', '.join(short)}. Runs and deploys would "
            f"fail with ResourceLimitExceeded; request the increases above, or deploy anyway with {IGNORE_OPTION}"
        )
    return standings

"""SageMaker's instance quotas as Service Quotas names them (ServiceCode `sagemaker`): one per instance type and usage,
"<instance type> for <usage>", one per usage across every instance type, and the most instances one training job or
endpoint may have. A job or an endpoint variant asks for instances of one type, counted against all three. The local
stack enforces them (local/quotas.py) and `make deploy` lists them for the config (rollout/quotas.py), from this one
definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVICE_CODE = "sagemaker"
TRAINING = "training job usage"
SPOT_TRAINING = "spot training job usage"
PROCESSING = "processing job usage"
ENDPOINT = "endpoint usage"
# the account-wide quota of each usage, by AWS's name
TOTALS = {
    TRAINING: "Number of instances across all training jobs",
    SPOT_TRAINING: "Number of instances across all spot training jobs",
    PROCESSING: "Number of instances across all processing jobs",
    ENDPOINT: "Number of instances across active endpoints",
}

# the most instances one training job or one endpoint may have (AWS names no such quota for processing)
PER_REQUEST = {
    TRAINING: "Maximum number of instances per training job",
    SPOT_TRAINING: "Maximum number of instances per spot training job",
    ENDPOINT: "Maximum number of instances per endpoint",
}


@dataclass(frozen=True)
class Demand:
    """Instances of one type that one job or endpoint variant holds while it runs."""

    usage: str
    instance_type: str
    count: int

    @property
    def quotas(self) -> tuple[str, str]:
        """The instance type's quota for this usage, then the usage's quota across all types."""
        return f"{self.instance_type} for {self.usage}", TOTALS[self.usage]

    @property
    def per_request(self) -> str | None:
        """The quota on the instances of one job or endpoint, which the request's own instances count against."""
        return PER_REQUEST.get(self.usage)


def training(request: dict[str, Any]) -> Demand:
    """A CreateTrainingJob request's instances: managed spot training counts against the spot quotas."""
    resources = request["ResourceConfig"]
    usage = SPOT_TRAINING if request.get("EnableManagedSpotTraining") else TRAINING
    return Demand(usage, str(resources["InstanceType"]), int(resources["InstanceCount"]))


def processing(request: dict[str, Any]) -> Demand:
    cluster = request["ProcessingResources"]["ClusterConfig"]
    return Demand(PROCESSING, str(cluster["InstanceType"]), int(cluster["InstanceCount"]))


def endpoint(variants: list[dict[str, Any]]) -> list[Demand]:
    """An endpoint config's instance-backed variants (a serverless variant has no instance type)."""
    return [
        Demand(ENDPOINT, str(v["InstanceType"]), int(v.get("InitialInstanceCount", 1)))
        for v in variants
        if v.get("InstanceType")
    ]


def exceeded(name: str, *, limit: float, used: float, delta: float) -> str:
    """SageMaker's ResourceLimitExceeded message, in its words."""
    return (
        f"The account-level service limit '{name}' is {_count(limit)} Instances, with current utilization of "
        f"{_count(used)} Instances and a request delta of {_count(delta)} Instances. Please use AWS Service Quotas to "
        "request an increase for this quota. If AWS Service Quotas is not available, contact AWS support to request "
        "an increase for this quota."
    )


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

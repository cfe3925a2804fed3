"""The local account's SageMaker instance quotas, and SageMaker's refusal of a job or endpoint that would exceed one.

Every quota has AWS's default (sagemaker_quotas.json: name, code and default value of each instance quota, as Service
Quotas listed them for us-east-1) and may have a value applied to the account. The stack starts with a generous
profile (every quota applied at GENEROUS, so `make run` and the tests run anywhere); a test can start it with AWS's
defaults, which are 0 for most instance types, and apply its own values, as a fresh account has them.

SageMaker counts a request against the instance type's quota for its usage and the usage's quota across all types,
with what running jobs and live endpoints hold, and refuses it with ResourceLimitExceeded: CreateTrainingJob (spot
or on-demand), CreateProcessingJob, CreateEndpoint, and UpdateEndpoint, which provisions the new fleet beside the old
one (blue/green). The executor calls `claim_job` before it creates a step's job (a refusal fails the step unless
its retry policy retries SageMaker.RESOURCE_LIMIT); the SageMaker front wraps hosting's endpoint operations in
`admitting`, which holds the check until the endpoint is registered.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.executor.records import ServiceError
from sam_stack import quotas as sagemaker_quotas
from sam_stack.quotas import Demand

TABLE = Path(__file__).with_name("sagemaker_quotas.json")
GENEROUS = 100.0
# a job's instances are claimed from the check until the job starts (at once, unless IAM refuses it)
CLAIM_SECONDS = 30.0
RUNNING_JOB = {"InProgress", "Stopping"}
ENDPOINT_OPERATIONS = {"CreateEndpoint", "UpdateEndpoint"}


@dataclass(frozen=True)
class Quota:
    name: str
    code: str
    default: float


def _table() -> dict[str, Quota]:
    rows = json.loads(TABLE.read_text())
    return {name: Quota(name, code, float(default)) for name, code, default in rows}


@dataclass
class _Claim:
    demand: Demand
    job_prefix: str
    until: float


@dataclass
class Quotas:
    """AWS's defaults, the values applied to the account, and the check against what is in use."""

    applied: dict[str, float] = field(default_factory=dict)
    # a value applied to every quota that has none of its own (the generous profile)
    applied_to_all: float | None = None
    known: dict[str, Quota] = field(default_factory=_table)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.claims: list[_Claim] = []
        self.executor: Any = None
        self.hosting: Any = None

    @classmethod
    def generous(cls) -> Quotas:
        return cls(applied_to_all=GENEROUS)

    @classmethod
    def aws_defaults(cls) -> Quotas:
        """A fresh account: nothing applied, AWS's default for every quota."""
        return cls()

    def apply(self, name: str, value: float) -> Quotas:
        """Apply `value` to the quota named `name` (or with code `name`), as an approved increase does."""
        self.applied[self.quota(name).name] = float(value)
        return self

    def quota(self, name: str) -> Quota:
        """The quota by name or code. An instance type whose quota the table lacks gets one with default 0 and a
        code of the local stack's own (L-LOCAL-...), named as AWS names it."""
        with self.lock:
            found = self.known.get(name) or next((q for q in self.known.values() if q.code == name), None)
            if found is None:
                code = "L-LOCAL-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()
                found = self.known[name] = Quota(name, code, 0.0)
            return found

    def by_code(self, code: str) -> Quota | None:
        with self.lock:
            return next((q for q in self.known.values() if q.code == code), None)

    def applied_value(self, quota: Quota) -> float | None:
        return self.applied.get(quota.name, self.applied_to_all)

    def value(self, name: str) -> float:
        quota = self.quota(name)
        applied = self.applied_value(quota)
        return quota.default if applied is None else applied

    def watch(self, executor: Any, hosting: Any) -> None:
        """What holds instances: the executor's jobs and hosting's endpoints (local.executor.engine, local.hosting)."""
        self.executor, self.hosting = executor, hosting

    def refused(self, operation: str, request: dict[str, Any]) -> str | None:
        """SageMaker's ResourceLimitExceeded message for this request, or None when every quota it counts against
        has room for it: first the most one job or endpoint may have, then the instance type's quota for the usage,
        then the usage's across all types, counted with what is in use."""
        demands = self._demands(operation, request)
        per_request: Counter[str] = Counter()
        asked: Counter[str] = Counter()
        for demand in demands:
            per_request.update({demand.per_request: demand.count} if demand.per_request else {})
            asked.update(dict.fromkeys(demand.quotas, demand.count))
        held = self.in_use() if demands else Counter[str]()
        checks = [(name, 0, count) for name, count in per_request.items()]
        checks += [(name, held[name], delta) for name, delta in asked.items()]
        for name, used, delta in checks:
            limit = self.value(name)
            if used + delta > limit:
                return sagemaker_quotas.exceeded(name, limit=limit, used=used, delta=delta)
        return None

    def in_use(self) -> Counter[str]:
        """Instances held per quota: running jobs, live endpoints (both fleets while one updates), and claims."""
        held: Counter[str] = Counter()
        for demand in [*self._jobs(), *self._endpoints(), *self._claimed()]:
            for name in demand.quotas:
                held[name] += demand.count
        return held

    def _demands(self, operation: str, request: dict[str, Any]) -> list[Demand]:
        if operation == "CreateTrainingJob":
            return [sagemaker_quotas.training(request)]
        if operation == "CreateProcessingJob":
            return [sagemaker_quotas.processing(request)]
        if operation not in ENDPOINT_OPERATIONS or self.hosting is None:
            return []
        config = self.hosting.configs.get(request.get("EndpointConfigName"))
        if config is None:  # hosting refuses it as SageMaker does: no such config
            return []
        if operation == "UpdateEndpoint":
            endpoint = self.hosting.endpoints.get(request.get("EndpointName"))
            if endpoint is None or endpoint.status != "InService":  # refused for its state first
                return []
        return sagemaker_quotas.endpoint(config["ProductionVariants"])

    def _jobs(self) -> list[Demand]:
        if self.executor is None:
            return []
        jobs = [j for j in list(self.executor.jobs.values()) if j.started and not j.ended and j.status in RUNNING_JOB]
        return [
            sagemaker_quotas.training(j.request) if j.kind == "training" else sagemaker_quotas.processing(j.request)
            for j in jobs
        ]

    def _endpoints(self) -> list[Demand]:
        if self.hosting is None:
            return []
        held = []
        for endpoint in list(self.hosting.endpoints.values()):
            if endpoint.status == "Failed":  # a failed endpoint holds no instances
                continue
            for name in {endpoint.config, endpoint.pending} - {None}:
                config = self.hosting.configs.get(name)
                held += sagemaker_quotas.endpoint(config["ProductionVariants"]) if config else []
        return held

    def _claimed(self) -> list[Demand]:
        now = time.monotonic()
        jobs = list(self.executor.jobs.values()) if self.executor is not None else []
        started = [str(j.name) for j in jobs if j.started]
        with self.lock:  # a claim ends when its job has started (it counts then) or, never started, at its deadline
            self.claims = [
                c for c in self.claims if c.until > now and not any(n.startswith(c.job_prefix) for n in started)
            ]
            return [c.demand for c in self.claims]

    def claim(self, operation: str, request: dict[str, Any], job_prefix: str) -> str | None:
        """Check a job's create request and hold its instances until a job named `job_prefix...` exists."""
        with self.lock:
            message = self.refused(operation, request)
            if message is None:
                until = time.monotonic() + CLAIM_SECONDS
                self.claims += [_Claim(d, job_prefix, until) for d in self._demands(operation, request)]
            return message


_installed: Quotas | None = None


def install(quotas: Quotas | None) -> None:
    """The quotas SageMaker's operations are checked against in this process (None: none, nothing is refused)."""
    global _installed
    _installed = quotas


class QuotaExceeded(Exception):
    """SageMaker refused to create a step's job for a quota: SageMaker.RESOURCE_LIMIT, which only the step's retry
    policy retries."""


def claim_job(operation: str, request: dict[str, Any], *, name_key: str) -> None:
    """Raise QuotaExceeded, as a pipeline step sees SageMaker's refusal, when the job would exceed a quota; else hold
    its instances until it starts. `request[name_key]` is the start of the job's name."""
    quotas = _installed
    if quotas is None:
        return
    message = quotas.claim(operation, request, str(request[name_key]))
    if message is not None:
        error = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": message}}, operation)
        raise QuotaExceeded(f"ClientError: {error}")


@contextmanager
def admitting(operation: str, request: dict[str, Any]) -> Iterator[None]:
    """Refuse `request` (ResourceLimitExceeded) when it exceeds a quota; else let it register what it holds before
    another request is checked."""
    quotas = _installed
    if quotas is None or operation not in ENDPOINT_OPERATIONS:
        yield
        return
    with quotas.lock:
        message = quotas.refused(operation, request)
        if message is not None:
            raise ServiceError("ResourceLimitExceeded", message)
        yield

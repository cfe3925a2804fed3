"""Service Quotas on loopback for ServiceCode `sagemaker`, from the local account's quotas (local/quotas.py); moto
5.2 knows only VPC's defaults, so every other service code is passed on to it.

As AWS documents them, GetServiceQuota and ListServiceQuotas give the values applied to the account (a quota that has
none is not retrieved: NoSuchResourceException, or absent from the list); GetAWSDefaultServiceQuota and
ListAWSDefaultServiceQuotas give AWS's defaults. boto3 reaches it through `AWS_ENDPOINT_URL_SERVICE_QUOTAS`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from local.executor.records import ServiceError
from local.executor.server import JsonFront
from local.quotas import Quota, Quotas, install
from sam_stack.quotas import SERVICE_CODE

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SERVICE_QUOTAS"
TARGET_PREFIX = "ServiceQuotasV20190624"
PAGE = 100
NOT_FOUND = "NoSuchResourceException"


class ServiceQuotasApi:
    """The operations, by name, over `quotas` of the account `account` in `region`."""

    def __init__(self, quotas: Quotas, *, region: str, account: str) -> None:
        self.quotas, self.region, self.account = quotas, region, account
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "GetServiceQuota": lambda r: {"Quota": self._described(self._applied(r["QuotaCode"]))},
            "ListServiceQuotas": self.list_applied,
            "GetAWSDefaultServiceQuota": lambda r: {"Quota": self._described(self._default(r["QuotaCode"]))},
            "ListAWSDefaultServiceQuotas": self.list_defaults,
        }

    def answer(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        if request.get("ServiceCode") != SERVICE_CODE or operation not in self.operations:
            return None
        return self.operations[operation](request)

    def list_applied(self, request: dict[str, Any]) -> dict[str, Any]:
        chosen = [(q, v) for q in self._all(request) if (v := self.quotas.applied_value(q)) is not None]
        return _page([self._described((q, v)) for q, v in chosen], request)

    def list_defaults(self, request: dict[str, Any]) -> dict[str, Any]:
        return _page([self._described((q, q.default)) for q in self._all(request)], request)

    def _all(self, request: dict[str, Any]) -> list[Quota]:
        with self.quotas.lock:
            known = sorted(self.quotas.known.values(), key=lambda q: q.name)
        code = request.get("QuotaCode")
        return [q for q in known if code is None or q.code == code]

    def _default(self, code: str) -> tuple[Quota, float]:
        quota = self.quotas.by_code(code)
        if quota is None:
            raise ServiceError(NOT_FOUND, f"The quota {code} of service {SERVICE_CODE} does not exist.")
        return quota, quota.default

    def _applied(self, code: str) -> tuple[Quota, float]:
        quota, _ = self._default(code)
        value = self.quotas.applied_value(quota)
        if value is None:
            raise ServiceError(NOT_FOUND, f"The quota {code} of service {SERVICE_CODE} has no applied value.")
        return quota, value

    def _described(self, quota_value: tuple[Quota, float]) -> dict[str, Any]:
        quota, value = quota_value
        return {
            "ServiceCode": SERVICE_CODE,
            "ServiceName": "Amazon SageMaker",
            "QuotaArn": f"arn:aws:servicequotas:{self.region}:{self.account}:{SERVICE_CODE}/{quota.code}",
            "QuotaCode": quota.code,
            "QuotaName": quota.name,
            "Value": value,
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
            "QuotaAppliedAtLevel": "ACCOUNT",
        }


def _page(items: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
    token = request.get("NextToken")
    try:
        start = int(base64.b64decode(token).decode()) if token else 0
    except ValueError:
        raise ServiceError("InvalidPaginationTokenException", "Invalid pagination token.") from None
    size = int(request.get("MaxResults") or PAGE)
    answer: dict[str, Any] = {"Quotas": items[start : start + size]}
    if start + size < len(items):
        answer["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
    return answer


class ServiceQuotasFront(JsonFront):
    """The front, which also makes its quotas the ones SageMaker's operations are checked against while it runs."""

    def __init__(self, api: ServiceQuotasApi, moto_endpoint: str) -> None:
        super().__init__(moto_endpoint, "service-quotas", target_prefix=TARGET_PREFIX, answer=api.answer)
        self.quotas = api.quotas

    def start(self) -> ServiceQuotasFront:
        install(self.quotas)
        super().start()
        return self

    def stop(self) -> None:
        install(None)
        super().stop()

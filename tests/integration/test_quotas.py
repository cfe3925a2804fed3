"""Service Quotas for SageMaker as the local stack serves it (local/service_quotas.py, in front of moto), and the
listing `make account-setup` and `make deploy` print from it (rollout/quotas.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError

from local.emulator import REGION, reset_moto
from local.executor.engine import Executor
from local.executor.server import SageMakerApi, sagemaker_front
from local.hosting import Hosting
from local.quotas import Quotas
from local.template import ACCOUNT
from rollout import quotas as rollout_quotas
from rollout.__main__ import main
from rollout.environments import RolloutError

ENDPOINT_QUOTA = ("ml.m5.large for endpoint usage", "L-614B09FD")
PROCESSING_QUOTA = ("ml.m5.xlarge for processing job usage", "L-0307F515")
SPOT_QUOTA = ("ml.c5.4xlarge for spot training job usage", "L-36C5FA8E")
ServeQuotas = Callable[[Quotas], Quotas]


def test_get_service_quota_gives_the_applied_value_and_the_default_is_asked_for_separately(
    service_quotas: ServeQuotas,
) -> None:
    # Given a fresh account with one quota raised
    service_quotas(Quotas.aws_defaults().apply(ENDPOINT_QUOTA[0], 2))
    sq = boto3.client("service-quotas", region_name=REGION)

    # Then the raised one has its applied value; one never raised has none applied, only AWS's default
    quota = sq.get_service_quota(ServiceCode="sagemaker", QuotaCode=ENDPOINT_QUOTA[1])["Quota"]
    assert (quota["QuotaName"], quota["Value"]) == (ENDPOINT_QUOTA[0], 2)
    with pytest.raises(ClientError) as missing:
        sq.get_service_quota(ServiceCode="sagemaker", QuotaCode=SPOT_QUOTA[1])
    assert missing.value.response["Error"]["Code"] == "NoSuchResourceException"
    default = sq.get_aws_default_service_quota(ServiceCode="sagemaker", QuotaCode=SPOT_QUOTA[1])["Quota"]
    assert (default["QuotaName"], default["Value"]) == (SPOT_QUOTA[0], 1)
    assert default["QuotaArn"] == f"arn:aws:servicequotas:{REGION}:123456789012:sagemaker/{SPOT_QUOTA[1]}"


def test_the_lists_page_through_applied_values_and_aws_defaults(service_quotas: ServeQuotas) -> None:
    service_quotas(Quotas.aws_defaults().apply(ENDPOINT_QUOTA[0], 2).apply(PROCESSING_QUOTA[1], 1))
    sq = boto3.client("service-quotas", region_name=REGION)

    applied = [
        q for page in sq.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker") for q in page["Quotas"]
    ]
    assert {(q["QuotaName"], q["Value"]) for q in applied} == {(ENDPOINT_QUOTA[0], 2), (PROCESSING_QUOTA[0], 1)}

    pages = list(
        sq.get_paginator("list_aws_default_service_quotas").paginate(
            ServiceCode="sagemaker", PaginationConfig={"PageSize": 100}
        )
    )
    defaults = {q["QuotaName"]: q["Value"] for page in pages for q in page["Quotas"]}
    assert len(pages) > 1
    assert defaults["Number of instances across all training jobs"] == 4
    assert defaults[ENDPOINT_QUOTA[0]] == 0


def test_other_services_quotas_are_moto_s(service_quotas: ServeQuotas) -> None:
    service_quotas(Quotas.generous())
    sq = boto3.client("service-quotas", region_name=REGION)
    vpc = sq.list_aws_default_service_quotas(ServiceCode="vpc")["Quotas"]
    assert vpc
    assert all(q["ServiceCode"] == "vpc" for q in vpc)


def test_the_listing_names_each_short_quota_and_the_command_that_requests_it(
    service_quotas: ServeQuotas, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fresh account: AWS's defaults (0 for ml.m5.xlarge processing and ml.m5.large endpoints)
    service_quotas(Quotas.aws_defaults())

    # When the default config is checked
    with pytest.raises(RolloutError) as refused:
        rollout_quotas.check(
            boto3.client("service-quotas", region_name=REGION), REGION, config=rollout_quotas.load_config()
        )

    # Then the short quotas are named, with the commands that ask for what the config needs
    printed = capsys.readouterr().out
    assert f"ok    {SPOT_QUOTA[0]}: needs 1, has 1" in printed
    assert f"SHORT {PROCESSING_QUOTA[0]}: needs 1, has 0" in printed
    assert f"SHORT {ENDPOINT_QUOTA[0]}: needs 2, has 0" in printed
    for (_, code), wanted in ((PROCESSING_QUOTA, 1), (ENDPOINT_QUOTA, 2)):
        command = f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code {code}"
        assert f"{command} --desired-value {wanted}" in printed
    assert PROCESSING_QUOTA[0] in str(refused.value)
    assert ENDPOINT_QUOTA[0] in str(refused.value)
    assert SPOT_QUOTA[0] not in str(refused.value)


def test_applied_values_count_and_a_config_that_fits_passes(service_quotas: ServeQuotas) -> None:
    service_quotas(Quotas.aws_defaults().apply(PROCESSING_QUOTA[0], 1).apply(ENDPOINT_QUOTA[0], 2))
    found = rollout_quotas.check(
        boto3.client("service-quotas", region_name=REGION), REGION, config=rollout_quotas.load_config()
    )
    assert not [s for s in found if s.short]


def test_account_setup_lists_the_quotas_without_refusing(
    service_quotas: ServeQuotas,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reset_moto(moto_endpoint)
    service_quotas(Quotas.aws_defaults())
    monkeypatch.setenv("AWS_REGION", REGION)
    assert main(["account-setup"]) == 0
    printed = capsys.readouterr().out
    assert "API Gateway now logs through" in printed
    assert f"--quota-code {ENDPOINT_QUOTA[1]} --desired-value 2" in printed


def test_create_endpoint_over_a_quota_is_refused_by_sagemakers_front_and_creates_nothing(
    service_quotas: ServeQuotas, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given the SageMaker front over hosting, in an account with no ml.m5.large endpoint instances
    hosting = Hosting(None, None, tmp_path, environment={}, region=REGION, account=ACCOUNT)
    service_quotas(Quotas.aws_defaults()).watch(None, hosting)
    front = sagemaker_front(SageMakerApi(cast(Executor, None)), moto_endpoint, hosting).start()
    try:
        sagemaker: Any = boto3.client("sagemaker", endpoint_url=front.endpoint, region_name=REGION)
        image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scratch-detector:1"
        role = f"arn:aws:iam::{ACCOUNT}:role/scratch-detector-sagemaker"
        sagemaker.create_model(ModelName="m", ExecutionRoleArn=role, PrimaryContainer={"Image": image})
        variant: dict[str, Any] = {
            "VariantName": "AllTraffic",
            "ModelName": "m",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
        sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])

        # When the endpoint is created, Then SageMaker's error names the quota, and no endpoint exists
        with pytest.raises(ClientError) as refused:
            sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c")
        error = refused.value.response["Error"]
        assert error["Code"] == "ResourceLimitExceeded"
        assert error["Message"].startswith(f"The account-level service limit '{ENDPOINT_QUOTA[0]}' is 0 Instances")
        assert hosting.endpoints == {}
    finally:
        front.stop()

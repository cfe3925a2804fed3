"""SageMaker's instance quotas: what the local stack counts against them, its ResourceLimitExceeded message, and the
quotas `make deploy` lists for a config."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from local import quotas
from local.executor.records import ServiceError
from local.quotas import Quotas
from rollout.quotas import needs
from tests.conftest import ConfigFactory

TRAINING = "ml.c5.4xlarge for training job usage"
SPOT = "ml.c5.4xlarge for spot training job usage"
PROCESSING = "ml.m5.xlarge for processing job usage"
ALL_PROCESSING = "Number of instances across all processing jobs"
ENDPOINT = "ml.m5.large for endpoint usage"
REQUEST_AN_INCREASE = (
    "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not available, "
    "contact AWS support to request an increase for this quota."
)


def training_request(count: int = 1, *, spot: bool = False) -> dict[str, Any]:
    return {
        "ResourceConfig": {"InstanceType": "ml.c5.4xlarge", "InstanceCount": count, "VolumeSizeInGB": 30},
        "EnableManagedSpotTraining": spot,
    }


def processing_request(count: int = 1, instance_type: str = "ml.m5.xlarge") -> dict[str, Any]:
    cluster = {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 30}
    return {"ProcessingResources": {"ClusterConfig": cluster}}


def job(name: str, kind: str, request: dict[str, Any], *, ended: bool = False) -> SimpleNamespace:
    now = datetime.now(UTC)
    return SimpleNamespace(name=name, kind=kind, request=request, status="InProgress", started=now, ended=ended or None)


def hosting(*endpoints: SimpleNamespace, configs: dict[str, int]) -> SimpleNamespace:
    variants = {
        name: {
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": n}
            ]
        }
        for name, n in configs.items()
    }
    return SimpleNamespace(endpoints={e.name: e for e in endpoints}, configs=variants)


def endpoint(name: str, config: str, status: str = "InService", pending: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(name=name, config=config, status=status, pending=pending)


def test_a_fresh_account_refuses_on_demand_training_in_sagemakers_words() -> None:
    # Given AWS's defaults: 0 on-demand ml.c5.4xlarge for training
    fresh = Quotas.aws_defaults()

    # When a training job asks for one
    refused = fresh.refused("CreateTrainingJob", training_request())

    # Then SageMaker's message names the quota, its value, what is in use and what was asked
    assert refused == (
        f"The account-level service limit '{TRAINING}' is 0 Instances, with current utilization of 0 Instances and "
        f"a request delta of 1 Instances. {REQUEST_AN_INCREASE}"
    )


def test_managed_spot_training_counts_against_the_spot_quota() -> None:
    fresh = Quotas.aws_defaults()
    # AWS's default for ml.c5.4xlarge spot training is 1 instance
    assert fresh.value(SPOT) == 1
    assert fresh.refused("CreateTrainingJob", training_request(1, spot=True)) is None
    refused = fresh.refused("CreateTrainingJob", training_request(2, spot=True))
    assert refused is not None
    assert f"'{SPOT}' is 1 Instances, with current utilization of 0 Instances and a request delta of 2" in refused


def test_running_jobs_count_and_ended_ones_do_not() -> None:
    # Given 3 ml.m5.xlarge processing instances, 2 held by a running job and 2 by one that ended
    account = Quotas.aws_defaults().apply(PROCESSING, 3)
    executor = SimpleNamespace(
        jobs={
            "a": job("a", "processing", processing_request(2)),
            "b": job("b", "processing", processing_request(2), ended=True),
        }
    )
    account.watch(executor, None)

    # Then one more fits and two do not
    assert account.refused("CreateProcessingJob", processing_request(1)) is None
    refused = account.refused("CreateProcessingJob", processing_request(2))
    assert refused is not None
    assert f"'{PROCESSING}' is 3 Instances, with current utilization of 2 Instances and a request delta of 2" in refused


def test_the_usage_quota_across_all_instance_types_counts_every_type() -> None:
    # Given room for each type, but AWS's default of 4 processing instances across all types
    account = Quotas.aws_defaults().apply(PROCESSING, 10).apply("ml.c5.xlarge for processing job usage", 10)
    account.watch(SimpleNamespace(jobs={"a": job("a", "processing", processing_request(3))}), None)

    refused = account.refused("CreateProcessingJob", processing_request(2, instance_type="ml.c5.xlarge"))

    assert refused is not None
    assert f"'{ALL_PROCESSING}' is 4 Instances, with current utilization of 3 Instances and a request delta of 2" in (
        refused
    )


def test_an_endpoint_update_needs_room_for_the_new_fleet_beside_the_old_and_a_failed_one_holds_nothing() -> None:
    account = Quotas.aws_defaults().apply(ENDPOINT, 3)
    live = endpoint("live", "blue")
    account.watch(None, hosting(live, endpoint("broken", "green", status="Failed"), configs={"blue": 2, "green": 2}))

    # the failed endpoint's 2 instances are not held; the live one's 2 are, so an update to 2 more does not fit
    update = account.refused("UpdateEndpoint", {"EndpointName": "live", "EndpointConfigName": "green"})
    assert update is not None
    assert f"'{ENDPOINT}' is 3 Instances, with current utilization of 2 Instances and a request delta of 2" in update
    # while an endpoint updates, both of its fleets are held
    live.status, live.pending = "Updating", "green"
    create = account.refused("CreateEndpoint", {"EndpointName": "other", "EndpointConfigName": "blue"})
    assert create is not None
    assert "with current utilization of 4 Instances" in create


def test_one_endpoint_or_training_job_may_not_have_more_instances_than_the_account_allows_per_request() -> None:
    # Given room for any number of ml.m5.large endpoint instances, and AWS's default of 4 per endpoint
    account = Quotas.aws_defaults().apply(ENDPOINT, 100).apply("Number of instances across active endpoints", 100)
    account.watch(None, hosting(configs={"big": 5}))

    refused = account.refused("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "big"})

    assert refused is not None
    assert "'Maximum number of instances per endpoint' is 4 Instances" in refused
    assert "with current utilization of 0 Instances and a request delta of 5 Instances" in refused
    training = Quotas.aws_defaults().apply(TRAINING, 100).apply("Number of instances across all training jobs", 100)
    assert "'Maximum number of instances per training job' is 20" in str(
        training.refused("CreateTrainingJob", training_request(21))
    )


def test_an_endpoint_whose_config_does_not_exist_is_left_to_hosting_to_refuse() -> None:
    account = Quotas.aws_defaults()
    account.watch(None, hosting(configs={}))
    assert account.refused("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "missing"}) is None


def test_a_checked_job_holds_its_instances_until_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given room for one spot instance, and no job registered yet
    account = Quotas.aws_defaults()
    executor = SimpleNamespace(jobs={})
    account.watch(executor, None)
    monkeypatch.setattr(quotas, "_installed", account)
    request = {**training_request(1, spot=True), "TrainingJobName": "pipelines-abc-train"}

    # When two steps are checked before either job exists, the second is refused as SageMaker refuses it
    quotas.claim_job("CreateTrainingJob", request, name_key="TrainingJobName")
    with pytest.raises(quotas.QuotaExceeded) as second:
        quotas.claim_job("CreateTrainingJob", request, name_key="TrainingJobName")
    reason = str(second.value)
    assert reason.startswith(
        "ClientError: An error occurred (ResourceLimitExceeded) when calling the CreateTrainingJob"
    )
    assert f"'{SPOT}' is 1 Instances, with current utilization of 1 Instances" in reason

    # and once the first job has run and ended, its claim and its instances are free again
    executor.jobs["pipelines-abc-train-1a2b3"] = job(
        "pipelines-abc-train-1a2b3", "training", training_request(1, spot=True), ended=True
    )
    quotas.claim_job("CreateTrainingJob", request, name_key="TrainingJobName")


def test_endpoint_operations_over_a_quota_are_refused_with_resource_limit_exceeded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = Quotas.aws_defaults()
    account.watch(None, hosting(configs={"blue": 1}))
    monkeypatch.setattr(quotas, "_installed", account)
    with (
        pytest.raises(ServiceError) as refused,
        quotas.admitting("CreateEndpoint", {"EndpointName": "e", "EndpointConfigName": "blue"}),
    ):
        pass
    assert refused.value.code == "ResourceLimitExceeded"
    assert f"'{ENDPOINT}' is 0 Instances" in refused.value.message


def test_nothing_is_refused_without_installed_quotas_or_in_the_generous_profile() -> None:
    quotas.claim_job("CreateTrainingJob", {**training_request(), "N": "x"}, name_key="N")  # nothing installed
    assert Quotas.generous().refused("CreateTrainingJob", training_request(4)) is None


def test_quotas_are_found_by_name_or_code_and_an_unknown_type_gets_a_local_code() -> None:
    account = Quotas.aws_defaults()
    assert account.quota("L-614B09FD").name == ENDPOINT  # AWS's code for it
    unknown = account.quota("ml.z9.mega for endpoint usage")
    assert unknown.code.startswith("L-LOCAL-")
    assert unknown.default == 0
    assert account.quota(unknown.code) == unknown


def test_the_config_needs_each_quota_once_with_the_most_instances_any_job_holds(make_config: ConfigFactory) -> None:
    config = make_config(**{"training.instance_count": 2, "deployment.instance_count": 2})
    needed = {n.name: n.instances for n in needs(config)}
    assert needed == {
        PROCESSING: 1,  # Preprocess and Evaluate run one after the other, one instance each
        ALL_PROCESSING: 1,
        SPOT: 2,
        "Number of instances across all spot training jobs": 2,
        ENDPOINT: 4,  # an update holds both fleets
        "Number of instances across active endpoints": 4,
        "Maximum number of instances per spot training job": 2,
        "Maximum number of instances per endpoint": 2,  # each fleet is the endpoint's own
    }
    on_demand = {n.name for n in needs(make_config(**{"training.spot.enabled": False}))}
    assert TRAINING in on_demand
    assert SPOT not in on_demand

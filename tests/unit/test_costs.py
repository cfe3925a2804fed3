"""A run's jobs priced: billable instance-seconds at the config's on-demand list prices (control_plane.costs)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from control_plane import costs, runs
from control_plane.costs import PriceTable
from control_plane.models import StartRunRequest
from pipeline_def.config import ConfigError, PipelineConfig
from tests.unit.fakes import FakeAudit, FakePipelines, FakePresigner, FakeRegistry

PRICES = PriceTable(
    region="us-east-1", as_of=date(2026, 12, 4), currency="USD", per_hour={"ml.c5.4xlarge": 0.8, "ml.m5.xlarge": 0.2}
)


def training(**fields: object) -> dict[str, object]:
    return {
        "TrainingJobName": "pipelines-abc-Train",
        "ResourceConfig": {"InstanceType": "ml.c5.4xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        "TrainingTimeInSeconds": 3600,
        "BillableTimeInSeconds": 900,
        **fields,
    }


def test_a_spot_training_job_is_priced_on_its_billable_seconds_on_each_instance_as_an_upper_bound() -> None:
    # Given a spot job that trained 3600 s and was billed 900 s on each of 2 instances at 0.8 USD/h
    usage = costs.training_usage(training(EnableManagedSpotTraining=True), PRICES)

    # Then it cost at most 900 * 2 * 0.8 / 3600 = 0.4 USD, and spot saved 1 - 900/3600
    assert (usage.instance_type, usage.instance_count) == ("ml.c5.4xlarge", 2)
    assert (usage.billable_seconds, usage.training_seconds) == (900, 3600)
    assert usage.estimated_cost == pytest.approx(0.4)
    assert usage.spot_saving == pytest.approx(0.75)
    assert "upper bound" in usage.cost_basis
    assert "us-east-1, 2026-12-04" in usage.cost_basis


def test_an_on_demand_training_job_has_no_spot_saving() -> None:
    usage = costs.training_usage(training(BillableTimeInSeconds=3600), PRICES)

    assert (usage.spot, usage.spot_saving) == (False, None)
    assert usage.estimated_cost == pytest.approx(1.6)
    assert "upper bound" not in usage.cost_basis


def test_a_processing_job_is_priced_from_its_start_to_its_end() -> None:
    job = {
        "ProcessingJobName": "pipelines-abc-Preprocess",
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
        "ProcessingStartTime": datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        "ProcessingEndTime": datetime(2026, 12, 4, 10, 30, tzinfo=UTC),
    }

    usage = costs.processing_usage(job, PRICES)

    assert usage.billable_seconds == 1800
    assert usage.estimated_cost == pytest.approx(0.1)


def test_no_price_and_no_end_give_no_cost_with_the_reason_never_a_guess() -> None:
    gpu = {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1}
    unknown = costs.training_usage(training(ResourceConfig=gpu), PRICES)
    running = costs.training_usage(training(BillableTimeInSeconds=None), PRICES)
    unread = costs.training_usage(training(), None)

    assert unknown.estimated_cost is None
    assert "no price for ml.p3.2xlarge" in unknown.cost_basis
    assert running.estimated_cost is None
    assert "when the job ends" in running.cost_basis
    assert unread.estimated_cost is None
    assert "could not be read" in unread.cost_basis
    # a run with a job that has no price is incomplete, and says why
    total = costs.run_cost([costs.training_usage(training(), PRICES), unknown], PRICES)
    assert total.estimated == pytest.approx(0.4)
    assert total.complete is False
    assert total.unpriced == [unknown.cost_basis]
    assert "1 job(s) without a price" in costs.cost_line(total)


def test_the_cost_line_names_the_prices_it_rests_on() -> None:
    total = costs.run_cost([costs.training_usage(training(EnableManagedSpotTraining=True), PRICES)], PRICES)

    assert costs.cost_line(total) == (
        "about 0.40 USD (on-demand list prices, us-east-1, 2026-12-04; spot training priced on demand, so at most this)"
    )
    assert costs.cost_line(None).startswith("estimated cost unknown")


def test_a_run_shows_each_jobs_instances_billable_seconds_and_cost() -> None:
    # Given a run whose Train (spot, 2 instances, 720 of 1800 s billed) and Evaluate (600 s) jobs ended
    pipelines, audit = FakePipelines(), FakeAudit()
    run_id = runs.start_run(runs.StartCommand(caller="bob", request=StartRunRequest()), pipelines, audit).run_id
    pipelines.step_list = [
        {"StepName": "Train", "StepStatus": "Succeeded",
         "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:1:training-job/pipelines-abc-Train"}}},
        {"StepName": "Evaluate", "StepStatus": "Executing",
         "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:1:processing-job/pipelines-abc-Eval"}}},
        {"StepName": "CheckMap", "StepStatus": "Succeeded", "Metadata": {}},
    ]  # fmt: skip
    readers = runs.RunReaders(registry=FakeRegistry(), audit=audit, read_report=lambda uri: None,
                              presigner=FakePresigner(), region="us-east-1")  # fmt: skip

    # When it is read
    detail = runs.get_run(run_id, pipelines, readers, prices=PRICES)

    # Then each job step has its job's figures, the condition step none, and the run the sum
    train, evaluate, check = detail.steps
    assert train.job is not None
    assert evaluate.job is not None
    assert check.job is None
    assert (train.job.instance_count, train.job.billable_seconds, train.job.spot_saving) == (2, 720, 0.6)
    assert train.job.estimated_cost == pytest.approx(720 * 2 * 0.8 / 3600)
    assert (evaluate.job.instance_type, evaluate.job.billable_seconds) == ("ml.m5.xlarge", 600)
    assert detail.cost is not None
    assert detail.cost.estimated == pytest.approx(0.32 + 600 * 0.2 / 3600)
    assert (detail.cost.complete, detail.cost.upper_bound, detail.cost.as_of) == (True, True, date(2026, 12, 4))


def test_the_price_table_refuses_a_price_that_is_not_positive_and_a_name_that_is_no_instance_type() -> None:
    data = PipelineConfig.from_file().model_dump(mode="json")
    data["pricing"]["per_hour"]["ml.m5.xlarge"] = 0
    data["pricing"]["per_hour"]["cheap"] = 1.0

    with pytest.raises(ConfigError) as raised:
        PipelineConfig.from_dict(data)

    reasons = dict(raised.value.problems)
    assert "greater than 0" in reasons["pricing.per_hour.ml.m5.xlarge"]
    assert "a SageMaker instance type" in reasons["pricing.per_hour.cheap.[key]"]


def test_the_default_config_prices_every_job_instance_type_it_uses() -> None:
    config = PipelineConfig.from_file()

    jobs = {config.preprocess.instance_type, config.training.instance_type, config.evaluation.instance_type}
    assert jobs <= set(config.pricing.per_hour)
    assert (config.pricing.region, config.pricing.currency) == ("us-east-1", "USD")

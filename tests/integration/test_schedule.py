"""The schedule's data check in-process against moto, as the function's role: a tick starts a run only when the
offline store was written after the last successful run's data time, and records why when it starts nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from control_plane.aws.s3 import ObjectListing
from tests.integration.conftest import LambdaContext, Stack, event

Load = Callable[[str, str], ModuleType]


def offline_store(stack: Stack) -> tuple[str, str]:
    """The bucket and prefix the deployed definition's Preprocess step reads."""
    described = stack.aws["sagemaker"].describe_pipeline(PipelineName=stack.values["AWS::StackName"])
    [step] = [s for s in json.loads(described["PipelineDefinition"])["Steps"] if s["Name"] == "Preprocess"]
    [store] = [i for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == "offline-store"]
    location = urlparse(store["S3Input"]["S3Uri"])
    return location.netloc, location.path.lstrip("/")


def write_record_file(stack: Stack, name: str) -> datetime:
    """A parquet file as Feature Store writes one (a batch of records) into the offline store; its LastModified."""
    bucket, prefix = offline_store(stack)
    key = f"{prefix}/year=2026/month=12/day=04/hour=10/{name}.parquet"
    stack.aws["s3"].put_object(Bucket=bucket, Key=key, Body=b"PAR1")
    return stack.aws["s3"].head_object(Bucket=bucket, Key=key)["LastModified"]  # type: ignore[no-any-return]


def successful_run(stack: Stack, data_as_of: datetime) -> str:
    """A run of the pipeline that succeeded (moto's runs succeed at once), its data read as of `data_as_of`."""
    started = stack.aws["sagemaker"].start_pipeline_execution(
        PipelineName=stack.values["AWS::StackName"],
        PipelineParameters=[{"Name": "DataAsOf", "Value": data_as_of.isoformat()}],
        ClientRequestToken="an-earlier-run-of-the-pipeline-00000",
    )
    described = stack.aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=started["PipelineExecutionArn"])
    assert described["PipelineExecutionStatus"] == "Succeeded"
    return str(started["PipelineExecutionArn"]).rsplit("/", 1)[-1]


def runs(stack: Stack) -> list[dict[str, Any]]:
    name = stack.values["AWS::StackName"]
    return list(stack.aws["sagemaker"].list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"])


def test_an_unchanged_offline_store_starts_nothing_and_the_audit_trail_says_why(
    stack: Stack, load_function: Load
) -> None:
    # Given a successful run whose data time is after everything the offline store holds
    written = write_record_file(stack, "20261204T100000Z_a")
    run_id = successful_run(stack, written + timedelta(seconds=1))
    handler = load_function("scheduled_start", "ScheduledStartFunction")

    # When the scheduled tick comes, twice (EventBridge delivers at least once)
    outcome = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())
    again = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())

    # Then no run starts, and why is recorded once, under the schedule's subject
    assert (outcome["started"], outcome["data_check"]) == (False, "unchanged")
    assert again == outcome
    assert len(runs(stack)) == 1
    [entry] = stack.audit()
    assert (entry["subject"]["S"], entry["action"]["S"]) == (f"schedule#{stack.values['AWS::StackName']}", "skip")
    assert entry["details"]["M"]["last_successful_run"]["S"] == run_id
    assert entry["details"]["M"]["objects_examined"]["S"] == "1"

    # And a reader sees it with GET /audit
    api = load_function("api", "ApiFunction")
    query = {"subject": f"schedule#{stack.values['AWS::StackName']}", "limit": "20"}
    response = api.lambda_handler(event("api", "get_audit", queryStringParameters=query), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    [shown] = json.loads(response["body"])["entries"]
    assert shown["details"]["reason"] == outcome["reason"]
    assert f"nothing written to the offline store since run {run_id}'s data time" in shown["details"]["reason"]
    assert shown["at"].startswith("2026-11-30T03:00:00")


def test_a_file_written_to_the_offline_store_after_the_last_successful_run_starts_one(
    stack: Stack, load_function: Load
) -> None:
    # Given a successful run whose data time is before a file the offline store wrote
    written = write_record_file(stack, "20261204T100000Z_b")
    successful_run(stack, written - timedelta(minutes=1))
    handler = load_function("scheduled_start", "ScheduledStartFunction")

    # When the scheduled tick comes
    outcome = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())

    # Then a run starts, and its start in the audit trail names the file
    assert (outcome["started"], outcome["data_check"]) == (True, "changed")
    assert len(runs(stack)) == 2
    [entry] = stack.audit()
    assert (entry["subject"]["S"], entry["action"]["S"]) == (f"run#{outcome['run_id']}", "start")
    assert "20261204T100000Z_b.parquet" in entry["details"]["M"]["data_check"]["S"]


def test_the_listing_stops_at_the_first_page_with_a_newer_object_and_at_its_limit(stack: Stack) -> None:
    # Given three files in the offline store, listed a page of one at a time
    written = [write_record_file(stack, f"20261204T100000Z_{n}") for n in range(3)]
    bucket, prefix = offline_store(stack)
    listing = ObjectListing(stack.aws["s3"])
    uri = f"s3://{bucket}/{prefix}"

    # When nothing is newer than the time asked, and only two objects may be listed
    capped = listing.written_since(uri, max(written) + timedelta(seconds=1), max_objects=2, page_size=1)
    # and when everything is
    found = listing.written_since(uri, min(written), max_objects=2, page_size=1)
    # and when nothing is, with no cap in the way
    whole = listing.written_since(uri, max(written) + timedelta(seconds=1), max_objects=10, page_size=1)

    # Then the capped listing says it could not finish; the other stops at its first page, which has a newer one
    assert (capped.examined, capped.newer, capped.complete) == (2, [], False)
    assert (found.examined, len(found.newer), found.complete) == (1, 1, True)
    assert (whole.examined, whole.newer, whole.complete) == (3, [], True)

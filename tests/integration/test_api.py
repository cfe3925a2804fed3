"""The REST API's routes in-process against moto: what each returns, refuses, and leaves unchanged."""

from __future__ import annotations

import base64
import copy
import json
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from botocore.stub import ANY

from control_plane.aws import clients
from tests.integration.conftest import LambdaContext, Stack, event
from tests.integration.stubs import PartialStubber


@pytest.fixture
def call(load_function: Callable[[str, str], ModuleType], context: LambdaContext) -> Callable[..., tuple[int, Any]]:
    api = load_function("api", "ApiFunction")

    def call(name: str, **changes: Any) -> tuple[int, Any]:
        response = api.lambda_handler(event("api", name, **changes), context)
        return response["statusCode"], json.loads(response["body"]) if response["body"] else None

    return call


def executions(stack: Stack) -> list[dict[str, Any]]:
    name = stack.values["AWS::StackName"]
    return list(stack.aws["sagemaker"].list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"])


def test_start_run_with_overrides_records_who_started_it(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    # When the sample start request arrives
    status, body = call("start_run")

    # Then one execution runs with the overrides as SageMaker strings (and no champion: nothing is approved yet),
    # and the caller is on record
    assert status == 201
    assert body["parameters"] == {
        "LearningRate": "0.001", "NumEpochs": "2", "DataAsOf": body["parameters"]["DataAsOf"]
    }  # fmt: skip
    # on the data as of the request's time
    pinned = datetime.fromisoformat(body["parameters"]["DataAsOf"])
    assert timedelta(0) <= datetime.now(UTC) - pinned < timedelta(minutes=1)
    described = stack.aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=body["execution_arn"])
    assert "arn:aws:iam::123456789012:user/alice" in described["PipelineExecutionDescription"]
    assert described["PipelineExecutionDisplayName"] == "nightly-retrain"
    audit = stack.audit()
    assert [(a["subject"]["S"], a["action"]["S"], a["actor"]["S"]) for a in audit] == [
        (f"run#{body['run_id']}", "start", "arn:aws:iam::123456789012:user/alice")
    ]


def test_same_idempotency_key_starts_one_run(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    first = call("start_run")
    second = call("start_run")

    assert first == second
    assert len(executions(stack)) == 1


def test_same_key_with_another_body_is_refused(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    call("start_run")
    status, body = call("start_run", body=json.dumps({"parameters": {"NumEpochs": 3}}))

    assert status == 422
    assert body["error"]["code"] == "IdempotencyKeyReused"
    assert len(executions(stack)) == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"parameters": {"NumEpochs": 2', "body: not valid JSON"),
        ('{"parameters": {"Epochs": 2}}', "parameters.Epochs: unknown parameter"),
        ('{"parameters": {"NumEpochs": "two"}}', "parameters.NumEpochs: expected Integer"),
        ('{"parameters": {"NumEpochs": true}}', "parameters.NumEpochs: expected Integer"),
        ('{"parameters": {"Backbone": "resnet50"}}', "parameters.Backbone: 'resnet50' is not one of"),
        ('{"parameters": {}, "colour": "red"}', "body.colour: unknown field"),
        ('{"display_name": "has spaces"}', "body.display_name"),
        # the pattern lets repeated hyphens pass SageMaker's 82 characters: found by tests/e2e/test_api_properties.py
        ('{"display_name": "a%sb"}' % ("-" * 81), "body.display_name"),
        # SageMaker refuses a line break in a description: the caller hears which field, SageMaker never sees it
        ('{"description": "two\\nlines"}', "body.description"),
        ('{"parameters": {"TrainingInstanceType": "ml.%s"}}' % ("x" * 1100), "parameters.TrainingInstanceType: longer"),
        # the gate is not a run's: the bypass measured before these were refused
        ('{"parameters": {"ModelApprovalStatus": "Approved", "MapThreshold": 0}}', "parameters.ModelApprovalStatus"),
        (
            '{"parameters": {"ModelApprovalStatus": "Approved", "MapThreshold": 0}}',
            "parameters.MapThreshold: 0.0 is below the config's floor 0.3",
        ),
        ('{"parameters": {"InputDataUri": "s3://mine/easy-test-split"}}', "parameters.InputDataUri: not a run"),
        ("[1, 2]", "body"),
        # the run's data time: an ISO 8601 time with an offset, not in the future, set by its own field
        ('{"data_as_of": "last tuesday"}', "data_as_of: 'last tuesday' is not an ISO 8601 time"),
        ('{"data_as_of": "2026-01-01T00:00:00"}', "data_as_of: '2026-01-01T00:00:00' has no UTC offset"),
        ('{"data_as_of": "2999-01-01T00:00:00Z"}', "data_as_of: 2999-01-01T00:00:00Z is in the future"),
        ('{"data_as_of": 1764900000}', "body.data_as_of"),
        ('{"parameters": {"DataAsOf": "2026-01-01T00:00:00Z"}}', "parameters.DataAsOf: set by the request's"),
    ],
)
def test_bad_start_requests_name_the_problem_and_start_nothing(
    stack: Stack, call: Callable[..., tuple[int, Any]], body: str, named: str
) -> None:
    status, answer = call("start_run", body=body, headers={"Content-Type": "application/json"})

    assert status == 400, answer
    assert answer["error"]["code"] == "InvalidRequest"
    assert named in answer["error"]["message"]
    assert executions(stack) == []
    assert stack.audit() == []


def test_a_run_may_read_the_data_as_of_an_earlier_time(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    # When a run is started on the data as of an earlier time (any offset)
    status, body = call("start_run", body=json.dumps({"data_as_of": "2026-12-01T03:00:00+01:00"}))

    # Then the execution's DataAsOf is that time in UTC: what Preprocess reads, and a retry keeps
    assert status == 201, body
    listed = stack.aws["sagemaker"].list_pipeline_parameters_for_execution(PipelineExecutionArn=body["execution_arn"])
    parameters = {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}
    assert parameters["DataAsOf"] == body["parameters"]["DataAsOf"] == "2026-12-01T02:00:00.000Z"


def test_unsigned_request_is_refused(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    sample = event("api", "start_run")
    context = {**sample["requestContext"], "identity": {"sourceIp": "192.0.2.10"}}

    status, _body = call("start_run", requestContext=context)

    assert status == 401
    assert executions(stack) == []


def test_list_runs_filters_by_status_and_pages(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    # Given three runs (moto finishes an execution as soon as it starts)
    started = [call("start_run", headers={"Idempotency-Key": f"k{i}"})[1]["run_id"] for i in range(3)]

    # When they are listed two at a time
    status, first = call("list_runs", queryStringParameters={"status": "Succeeded", "limit": "2"})
    _, second = call(
        "list_runs", queryStringParameters={"status": "Succeeded", "limit": "2", "next_token": first["next_token"]}
    )
    _, none = call("list_runs", queryStringParameters={"status": "Failed"})

    # Then every run appears once, newest first
    assert status == 200
    listed = [r["run_id"] for r in first["runs"] + second["runs"]]
    assert len(first["runs"]) == 2
    assert sorted(listed) == sorted(started)
    assert second["next_token"] is None
    assert none == {"runs": [], "next_token": None}


@pytest.mark.parametrize("route", ["list_runs", "list_models"])
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"status": "Running"}, "query.status"),
        ({"limit": "0"}, "query.limit"),
        ({"next_token": "bad"}, "next_token"),
        # SageMaker's NextToken holds at most 8192 characters
        ({"next_token": "x" * 8193}, "query.next_token"),
        # and matches `.*`, whose dot (Java's) matches no line break
        ({"next_token": '\n"'}, "query.next_token"),
        ({"next_token": base64.urlsafe_b64encode(json.dumps(["a\u2028b", 0]).encode()).decode()}, "next_token"),
    ],
)
def test_bad_list_queries_are_400(
    call: Callable[..., tuple[int, Any]], route: str, query: dict[str, str], named: str
) -> None:
    status, body = call(route, queryStringParameters=query)

    assert status == 400
    assert named in body["error"]["message"]


def test_unknown_route_is_json_404(call: Callable[..., tuple[int, Any]]) -> None:
    status, body = call("get_config", path="/nowhere", resource="/nowhere")

    assert status == 404
    assert body["error"]["code"] == "NoSuchRoute"


def test_config_shows_the_active_text_and_its_version(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    status, body = call("get_config")

    assert status == 200
    assert body["valid"] is True
    assert body["version"] == 1
    assert body["config"]["pipeline"]["name"] == stack.values["AWS::StackName"]


def test_config_reports_an_invalid_parameter_without_failing(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    stack.aws["ssm"].put_parameter(
        Name=stack.values["ConfigParameter"], Value="pipeline: {name: x}\n", Type="String", Overwrite=True
    )

    status, body = call("get_config")

    assert status == 200
    assert body["valid"] is False
    assert body["version"] == 2
    assert any(e.startswith("role_arn:") for e in body["errors"])


def test_openapi_document_lists_the_routes(call: Callable[..., tuple[int, Any]]) -> None:
    status, body = call("openapi")

    assert status == 200
    assert {"/runs", "/runs/{run_id}", "/models/{version}/approve", "/config", "/audit"} <= set(body["paths"])
    start = body["paths"]["/runs"]["post"]
    assert {"201", "400", "422"} <= set(start["responses"])
    assert start["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")
    # every operation documents its success with the schema of what it returns
    operations = [
        (path, verb, op)
        for path, verbs in body["paths"].items()
        for verb, op in verbs.items()
        if path != "/slack/actions"
    ]
    assert len(operations) == 13
    for path, verb, operation in operations:
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert len(success) == 1, (verb, path)
        schema = operation["responses"][success[0]]["content"]["application/json"]["schema"]
        assert "$ref" in schema, (verb, path, schema)


def test_openapi_document_shows_the_runs_data_time_and_the_models_data(call: Callable[..., tuple[int, Any]]) -> None:
    status, body = call("openapi")

    assert status == 200
    schemas = body["components"]["schemas"]
    assert "data_as_of" in schemas["StartRunRequest"]["properties"]
    assert "dataset" in schemas["ModelDetail"]["properties"]
    assert set(schemas["DatasetRef"]["properties"]) == {"as_of", "manifest_uri", "manifest_sha256"}
    assert {"as_of", "manifest_sha256"} <= set(schemas["DatasetSummary"]["properties"])


def test_openapi_document_describes_a_runs_data_changes_since_the_champion(
    call: Callable[..., tuple[int, Any]],
) -> None:
    status, body = call("openapi")

    assert status == 200
    schemas = body["components"]["schemas"]
    found = schemas["RunDetail"]["properties"]["data_changes"]["anyOf"]
    assert {"$ref": "#/components/schemas/DataChanges"} in found
    changes = schemas["DataChanges"]["properties"]
    assert {"champion_version", "splits", "totals", "examples", "absent", "summary"} <= set(changes)
    assert changes["splits"]["additionalProperties"] == {"$ref": "#/components/schemas/SplitChanges"}
    assert {"added", "removed", "relabelled", "pixels_changed", "moved"} <= set(schemas["TotalChanges"]["properties"])


def test_openapi_document_says_every_route_but_slacks_is_signed_with_sigv4(
    call: Callable[..., tuple[int, Any]],
) -> None:
    status, body = call("openapi")

    assert status == 200
    # the scheme as API Gateway exports an IAM-authorised API
    assert body["components"]["securitySchemes"]["sigv4"] == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": body["components"]["securitySchemes"]["sigv4"]["description"],
    }
    assert "security" not in body  # no global default: each operation says how it is authorised
    security = {(verb, path): op.get("security") for path, verbs in body["paths"].items() for verb, op in verbs.items()}
    assert security.pop(("post", "/slack/actions")) == []
    assert len(security) == 13
    assert set(map(str, security.values())) == {"[{'sigv4': []}]"}
    slack = body["paths"]["/slack/actions"]["post"]
    assert "Slack's signature" in slack["description"]
    error = slack["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
    assert error.rsplit("/", 1)[-1] in body["components"]["schemas"]


# ---------- one run, step by step (ListPipelineExecutionSteps is stubbed: moto lacks it) ----------

ACCOUNT_REGION = "us-east-1:123456789012"


def training_job(stack: Stack, name: str) -> str:
    return str(
        stack.aws["sagemaker"].create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                "TrainingInputMode": "File",
            },
            RoleArn=stack.values["SageMakerExecutionRole.Arn"],
            # where the pipeline's Train step writes (pipeline/<pipeline>/<execution id>/Train/model)
            OutputDataConfig={"S3OutputPath": f"s3://{stack.values['ArtifactBucket']}/{TRAIN_OUTPUT}"},
            ResourceConfig={"InstanceType": "ml.c5.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )["TrainingJobArn"]
    )


PICTURE = b"\x89PNG\r\n\x1a\n a picture"
EVALUATION_FOLDER = "pipeline/scratch-detector/run/Evaluate/evaluation"
TRAIN_OUTPUT = "pipeline/scratch-detector/run/Train/model"
MODEL_ARCHIVE = f"{TRAIN_OUTPUT}/pipelines-run-Train-abc/output/model.tar.gz"


def put_picture(stack: Stack) -> None:
    stack.aws["s3"].put_object(Bucket=stack.values["ArtifactBucket"], Key=f"{EVALUATION_FOLDER}/predictions.png",
                               Body=PICTURE)  # fmt: skip


def fetch(url: str) -> bytes:
    """A presigned URL, opened as a person's browser would: no credentials of its own."""
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def processing_job(stack: Stack, name: str, outputs: list[dict[str, Any]] | None = None) -> str:
    """A processing job in moto, on the config's ml.m5.xlarge."""
    return str(
        stack.aws["sagemaker"].create_processing_job(
            ProcessingJobName=name,
            ProcessingResources={
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
            },
            AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
            RoleArn=stack.values["SageMakerExecutionRole.Arn"],
            **({"ProcessingOutputConfig": {"Outputs": outputs}} if outputs else {}),
        )["ProcessingJobArn"]
    )


def evaluation_job(stack: Stack, name: str, report: dict[str, Any]) -> str:
    folder = f"s3://{stack.values['ArtifactBucket']}/pipeline/scratch-detector/run/Evaluate/evaluation"
    stack.aws["s3"].put_object(
        Bucket=stack.values["ArtifactBucket"],
        Key="pipeline/scratch-detector/run/Evaluate/evaluation/evaluation.json",
        Body=json.dumps(report).encode(),
    )
    output = {"S3Uri": folder, "LocalPath": "/opt/ml/processing/output/evaluation", "S3UploadMode": "EndOfJob"}
    return processing_job(stack, name, [{"OutputName": "evaluation", "S3Output": output}])


def register_model(
    stack: Stack,
    test_map: float,
    execution_arn: str,
    evaluation_uri: str | None = None,
    status: str = "PendingManualApproval",
) -> str:
    metrics = {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}}
    return str(
        stack.aws["sagemaker"].create_model_package(
            ModelPackageGroupName=stack.values["AWS::StackName"],
            ModelApprovalStatus=status,
            **({"ModelMetrics": metrics} if evaluation_uri else {}),
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                        "ModelDataUrl": f"s3://{stack.values['ArtifactBucket']}/{MODEL_ARCHIVE}",
                    }
                ],
                "SupportedContentTypes": ["image/jpeg"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"TestMap": str(test_map), "PipelineExecutionArn": execution_arn},
        )["ModelPackageArn"]
    )


def test_a_run_step_by_step_with_metrics_report_and_model(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    # Given a finished run whose jobs, evaluation report and model package exist
    run = call("start_run")[1]
    train = training_job(stack, "pipelines-run-Train-abc")
    evaluate = evaluation_job(stack, "pipelines-run-Evaluate-abc", {"metrics": {"map": {"value": 0.73}}})
    put_picture(stack)
    package = register_model(stack, 0.73, run["execution_arn"])
    steps = [
        {
            "StepName": "Train",
            "StepStatus": "Succeeded",
            "AttemptCount": 2,
            "StartTime": "2026-11-26T10:00:00Z",
            "EndTime": "2026-11-26T10:30:00Z",
            "Metadata": {"TrainingJob": {"Arn": train}},
        },
        {
            "StepName": "Evaluate",
            "StepStatus": "Succeeded",
            "Metadata": {"ProcessingJob": {"Arn": evaluate}},
            "CacheHitResult": {"SourcePipelineExecutionArn": run["execution_arn"]},
        },
        {"StepName": "Register", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": package}}},
    ]
    sagemaker = clients.client("sagemaker")
    with PartialStubber(sagemaker, {"ListPipelineExecutionSteps"}) as stubber:
        stubber.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": steps},
            {"PipelineExecutionArn": run["execution_arn"], "SortOrder": "Ascending"},
        )

        # When the run is asked for
        status, body = call("get_run", path=f"/runs/{run['run_id']}", pathParameters={"run_id": run["run_id"]})

        stubber.assert_no_pending_responses()

    # Then it shows each step, the training metrics, the report and the model
    assert status == 200
    assert body["started_by"]["actor"] == "arn:aws:iam::123456789012:user/alice"
    assert body["started_by"]["source"] == "api"
    # and links, good for a quarter of an hour, to what exists of its results: the report and the predictions
    links = body["artefacts"]
    assert fetch(links["evaluation_json"]) == json.dumps({"metrics": {"map": {"value": 0.73}}}).encode()
    assert fetch(links["predictions_png"]) == PICTURE
    assert "X-Amz-Expires=900" in links["predictions_png"]
    assert (links["training_curves_png"], links["model_archive"]) == (None, None)
    assert body["parameters"]["NumEpochs"] == "2"
    assert [s["name"] for s in body["steps"]] == ["Train", "Evaluate", "Register"]
    train_step = body["steps"][0]
    assert (train_step["attempts"], train_step["job_arn"], train_step["cache_hit"]) == (2, train, False)
    assert "TrainingJobs" in train_step["logs_url"]
    assert "pipelines-run-Train-abc" in train_step["logs_url"]
    assert body["steps"][1]["cache_hit"] is True
    assert body["training_metrics"] == {"train:progress": 100.0}
    assert body["evaluation"] == {"metrics": {"map": {"value": 0.73}}}
    assert body["model"]["map"] == 0.73
    assert body["model"]["run_id"] == run["run_id"]
    # and each job step its job's instances, as DescribeTrainingJob and DescribeProcessingJob answer them (as the
    # API's role); moto's processing job ran from its creation to its end in the same instant, and its training job
    # reports no billable time (SageMaker does once a job ends), so that one has no cost, and no guess
    train_job, evaluate_job = body["steps"][0]["job"], body["steps"][1]["job"]
    assert (train_job["instance_type"], train_job["instance_count"]) == ("ml.c5.4xlarge", 1)
    assert (evaluate_job["instance_type"], evaluate_job["instance_count"]) == ("ml.m5.xlarge", 1)
    assert (evaluate_job["billable_seconds"], evaluate_job["estimated_cost"]) == (0, 0.0)
    assert "ml.m5.xlarge at the on-demand 0.23 USD/h (us-east-1, 2026-12-04)" in evaluate_job["cost_basis"]
    assert (train_job["billable_seconds"], train_job["estimated_cost"]) == (None, None)
    assert "when the job ends" in train_job["cost_basis"]
    assert body["steps"][2]["job"] is None
    # and the run's cost says which prices it rests on, and why it is incomplete
    cost = body["cost"]
    assert (cost["region"], cost["as_of"], cost["currency"]) == ("us-east-1", "2026-12-04", "USD")
    assert (cost["estimated"], cost["complete"]) == (0.0, False)
    assert cost["unpriced"] == [train_job["cost_basis"]]


def test_unknown_run_is_404_and_a_malformed_id_is_400(call: Callable[..., tuple[int, Any]]) -> None:
    missing = call("get_run")
    malformed = call("get_run", path="/runs/NOT-AN-ID", pathParameters={"run_id": "NOT-AN-ID"})

    assert missing[0] == 404
    assert missing[1]["error"]["code"] == "NotFound"
    assert malformed[0] == 400
    assert "path.run_id" in malformed[1]["error"]["message"]


def test_stopping_a_finished_run_is_409_and_stops_nothing(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    run = call("start_run")[1]
    with PartialStubber(clients.client("sagemaker"), {"StopPipelineExecution"}) as stubber:
        status, body = call("stop_run", path=f"/runs/{run['run_id']}/stop", pathParameters={"run_id": run["run_id"]})
        stubber.assert_no_pending_responses()

    assert status == 409
    assert "Succeeded" in body["error"]["message"]
    assert [a["action"]["S"] for a in stack.audit()] == ["start"]


def _executing(arn: str, status: str) -> dict[str, Any]:
    return {
        "PipelineExecutionArn": arn,
        "PipelineExecutionStatus": status,
        "LastModifiedTime": "2026-11-26T10:00:00Z",
        "CreationTime": "2026-11-26T09:00:00Z",
    }


@pytest.mark.parametrize(
    ("action", "before", "after", "operation"),
    [
        ("stop", "Executing", "Stopping", "stop_pipeline_execution"),
        ("retry", "Failed", "Executing", "retry_pipeline_execution"),
    ],
)
def test_stop_and_retry_ask_sagemaker_once_and_are_audited(
    stack: Stack, call: Callable[..., tuple[int, Any]], action: str, before: str, after: str, operation: str
) -> None:
    run_id = "abcdef123456"
    arn = f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/{stack.values['AWS::StackName']}/execution/{run_id}"
    with PartialStubber(
        clients.client("sagemaker"), {"DescribePipelineExecution", "StopPipelineExecution", "RetryPipelineExecution"}
    ) as stubber:
        stubber.add_response("describe_pipeline_execution", _executing(arn, before))
        stubber.add_response(
            operation, {"PipelineExecutionArn": arn}, {"PipelineExecutionArn": arn, "ClientRequestToken": ANY}
        )
        stubber.add_response("describe_pipeline_execution", _executing(arn, after))

        status, body = call(f"{action}_run")

        stubber.assert_no_pending_responses()
    assert status == 200
    assert body["status"] == after
    assert [(a["subject"]["S"], a["action"]["S"]) for a in stack.audit()] == [(f"run#{run_id}", action)]


# ---------- models ----------


def test_models_list_newest_first_with_map(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    arn = f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456"
    register_model(stack, 0.41, arn)
    register_model(stack, 0.73, arn)

    status, body = call("list_models", queryStringParameters=None)

    assert status == 200
    assert [(m["version"], m["map"], m["approval_status"]) for m in body["models"]] == [
        (2, 0.73, "PendingManualApproval"),
        (1, 0.41, "PendingManualApproval"),
    ]


def test_approve_then_approve_again_then_reject(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    package = register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")

    # When the model is approved
    status, approved = call("approve_model")
    # Then SageMaker holds the approver and the comment
    described = stack.aws["sagemaker"].describe_model_package(ModelPackageName=package)
    assert status == 200
    assert approved["changed"] is True
    assert described["ModelApprovalStatus"] == "Approved"
    assert "arn:aws:iam::123456789012:user/alice" in described["ApprovalDescription"]
    assert "checked the predictions" in described["ApprovalDescription"]

    # When it is approved again, nothing changes
    status, again = call("approve_model", body=json.dumps({"comment": "again"}))
    assert (status, again["changed"]) == (200, False)
    assert (
        stack.aws["sagemaker"].describe_model_package(ModelPackageName=package)["ApprovalDescription"]
        == (described["ApprovalDescription"])
    )

    # When the approved model is rejected, it is, and both decisions are audited
    status, rejected = call("reject_model")
    assert (status, rejected["approval_status"]) == (200, "Rejected")
    audit = sorted(stack.audit(), key=lambda a: a["at"]["S"])
    assert [(a["action"]["S"], a["details"]["M"]["from"]["S"]) for a in audit] == [
        ("approve", "PendingManualApproval"),
        ("reject", "Approved"),
    ]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"body": '{"comment": ""}'}, 400, "InvalidRequest"),
        ({"body": "{}"}, 400, "InvalidRequest"),
        ({"body": '{"comment": "ok", "approver": "me"}'}, 400, "InvalidRequest"),
        ({"body": '{"comment": "fine\\nreally"}'}, 400, "InvalidRequest"),
        ({"path": "/models/x/approve", "pathParameters": {"version": "x"}}, 400, "InvalidRequest"),
        ({"path": "/models/99/approve", "pathParameters": {"version": "99"}}, 404, "NotFound"),
        # SageMaker refuses a version of more than 9 digits in a package ARN: a 400 here, not its ValidationException
        ({"path": "/models/1000000000/approve", "pathParameters": {"version": "1000000000"}}, 400, "InvalidRequest"),
    ],
)
def test_bad_decisions_change_nothing(
    stack: Stack, call: Callable[..., tuple[int, Any]], changes: dict[str, Any], status: int, code: str
) -> None:
    package = register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")

    answer = call("approve_model", **changes)

    assert (answer[0], answer[1]["error"]["code"]) == (status, code)
    described = stack.aws["sagemaker"].describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert stack.audit() == []


def test_get_model_shows_where_it_came_from(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")

    status, body = call("get_model")

    assert status == 200
    assert (body["version"], body["map"], body["run_id"]) == (1, 0.73, "abcdef123456")
    assert body["model_data_url"].endswith("model.tar.gz")
    # a run the control plane did not start, of a pipeline that no longer has it: no origin, no status
    assert (body["started_by"], body["run_status"], body["decisions"]) == (None, None, [])


BOB = "arn:aws:iam::123456789012:user/bob"


def by(name: str, caller: str) -> dict[str, Any]:
    """The sample request's changes that make `caller` its signer (API Gateway's identity fields)."""
    context = copy.deepcopy(event("api", name)["requestContext"])
    context["identity"] = {**context["identity"], "userArn": caller, "caller": caller.rsplit("/", 1)[-1]}
    return {"requestContext": context}


def test_who_started_a_run_may_neither_approve_nor_deploy_its_model_through_the_api(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    # Given a model of a run alice started
    run = call("start_run")[1]
    register_model(stack, 0.73, run["execution_arn"])

    # When alice approves it, Then a 409 names the rule and her, and the model is still pending
    status, body = call("approve_model")
    assert status == 409
    assert body["error"]["message"].startswith(
        f"model_registry.four_eyes: arn:aws:iam::123456789012:user/alice started run {run['run_id']}"
    )
    assert call("get_model")[1]["approval_status"] == "PendingManualApproval"

    # When bob approves it, Then it is approved; and alice may still not deploy it, bob may
    assert call("approve_model", **by("approve_model", BOB))[0] == 200
    status, body = call("deploy_model")
    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert "another identity must deploy it" in body["error"]["message"]
    assert call("deploy_model", **by("deploy_model", BOB))[0] == 202


def test_the_deploy_workflows_role_may_never_approve(
    stack: Stack, call: Callable[..., tuple[int, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pending model, and the API of a stack that knows its deploy workflow's role
    register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")
    ci = "arn:aws:sts::123456789012:assumed-role/scratch-detector-github-dev-DeployRole-ABC/GitHubActions"
    # the stack deployed with CiRoleArn (the API reads it at cold start)
    api = sys.modules["functions.api.app"]
    role = "arn:aws:iam::123456789012:role/scratch-detector-github-dev-DeployRole-ABC"
    monkeypatch.setattr(api, "ENV", api.ENV.model_copy(update={"ci_role_arn": role}))
    status, body = call("approve_model", **by("approve_model", ci))
    assert (status, body["error"]["code"]) == (403, "Forbidden")
    assert call("get_model")[1]["approval_status"] == "PendingManualApproval"


def test_a_models_decisions_and_its_run_come_from_the_audit_trail(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    # Given a model trained by a run alice started, approved and then rejected through the API
    run = call("start_run")[1]
    evaluation_job(stack, "pipelines-run-Evaluate-abc", {"metrics": {"map": {"value": 0.73}}})
    put_picture(stack)
    bucket = stack.values["ArtifactBucket"]
    register_model(stack, 0.73, run["execution_arn"], f"s3://{bucket}/{EVALUATION_FOLDER}/evaluation.json")
    stack.aws["s3"].put_object(Bucket=bucket, Key=MODEL_ARCHIVE, Body=b"archive")
    approve = call("approve_model", **by("approve_model", BOB))  # four eyes: not alice, who started the run
    reject = call("reject_model")
    assert (approve[0], reject[0]) == (200, 200)

    # When the model is asked for
    status, body = call("get_model")

    # Then it names both decisions, oldest first, with who, from where and why
    assert status == 200
    decisions = [(d["decision"], d["actor"], d["source"], d["previous_status"]) for d in body["decisions"]]
    alice = "arn:aws:iam::123456789012:user/alice"
    assert decisions == [("approve", BOB, "api", "PendingManualApproval"), ("reject", alice, "api", "Approved")]
    assert all(d["comment"] for d in body["decisions"])
    described = stack.aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=run["execution_arn"])
    assert (body["run_id"], body["run_status"]) == (run["run_id"], described["PipelineExecutionStatus"])
    assert body["started_by"]["actor"] == alice
    assert fetch(body["artefacts"]["predictions_png"]) == PICTURE
    assert fetch(body["artefacts"]["model_archive"]) == b"archive"

    # And the audit trail pages through the same entries, newest first, one at a time
    subject = "model#scratch-detector/1"
    first = call("get_audit", queryStringParameters={"subject": subject, "limit": "1"})[1]
    second = call(
        "get_audit", queryStringParameters={"subject": subject, "limit": "1", "next_token": first["next_token"]}
    )[1]
    assert [e["action"] for e in first["entries"] + second["entries"]] == ["reject", "approve"]
    assert second["entries"][0]["details"]["to"] == "Approved"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"subject": "everything"}, "query.subject: String should match pattern"),
        ({"subject": "run#abcdef123456", "next_token": "not base64!"}, "query.next_token: String should match pattern"),
        ({"subject": "run#abcdef123456", "next_token": "bm90IGpzb24"}, "next_token: not a token this API returned"),
    ],
)
def test_a_bad_audit_query_is_a_400_that_names_the_field(
    call: Callable[..., tuple[int, Any]], query: dict[str, str], message: str
) -> None:
    status, body = call("get_audit", queryStringParameters=query)

    assert status == 400
    assert message in body["error"]["message"]


def test_an_audit_cursor_of_another_subject_is_refused(stack: Stack, call: Callable[..., tuple[int, Any]]) -> None:
    run = call("start_run")[1]
    token = base64.urlsafe_b64encode(
        json.dumps([f"run#{run['run_id']}", "2026-12-01T00:00:00.000+00:00#0000abcd"]).encode()
    ).decode()
    status, body = call("get_audit", queryStringParameters={"subject": "run#zzzzzzzzzzzz", "next_token": token})

    assert status == 400
    assert body["error"]["message"] == "next_token: not a token this API returned for subject run#zzzzzzzzzzzz"


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
        "application/json; charset=utf-16",
        "",
    ],
)
def test_any_content_type_gets_a_4xx_that_names_it_and_starts_nothing(
    stack: Stack, call: Callable[..., tuple[int, Any]], content_type: str
) -> None:
    status, answer = call("start_run", body='{"parameters": {}}', headers={"Content-Type": content_type})

    assert status in {201, 400, 415}, answer
    if status != 201:
        assert answer["error"]["code"] in {"InvalidRequest", "UnsupportedMediaType"}
        assert executions(stack) == []


# ---------- the stack's endpoint ----------


def deploy_call(call: Callable[..., tuple[int, Any]], version: int) -> tuple[int, Any]:
    path = {"path": f"/models/{version}/deploy", "pathParameters": {"version": str(version)}}
    return call("deploy_model", **path)


def approved(stack: Stack, call: Callable[..., tuple[int, Any]]) -> str:
    package = register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")
    assert call("approve_model")[0] == 200
    return package


def test_an_approved_model_is_deployed_to_the_stacks_endpoint_and_audited(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    package = approved(stack, call)

    status, body = deploy_call(call, 1)

    assert status == 202, body
    name = stack.values["AWS::StackName"]
    assert (body["name"], body["version"], body["instance_type"], body["instance_count"]) == (name, 1, "ml.m5.large", 1)
    # the model is made from the package, and runs as the pipeline's role
    model = stack.aws["sagemaker"].describe_model(ModelName=body["model"])
    assert model["ExecutionRoleArn"] == stack.values["SageMakerExecutionRole.Arn"]
    assert call("get_endpoint")[1]["version"] == 1
    [entry] = [e for e in stack.audit() if e["action"]["S"] == "deploy"]
    assert entry["subject"]["S"] == f"endpoint#{name}"
    assert entry["actor"]["S"].endswith("user/alice")
    assert entry["details"]["M"]["package"]["S"] == package


@pytest.mark.parametrize("decision", [None, "reject_model"])
def test_a_pending_or_rejected_model_is_not_deployed(
    stack: Stack, call: Callable[..., tuple[int, Any]], decision: str | None
) -> None:
    register_model(stack, 0.73, f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/x/execution/abcdef123456")
    if decision:
        assert call(decision)[0] == 200
    expected = "Rejected" if decision else "PendingManualApproval"

    status, body = deploy_call(call, 1)

    assert (status, body["error"]["code"]) == (409, "Conflict")
    assert f"model version 1 is {expected}" in body["error"]["message"]
    assert stack.aws["sagemaker"].list_endpoint_configs()["EndpointConfigs"] == []
    assert call("get_endpoint")[0] == 404
    assert [e for e in stack.audit() if e["action"]["S"] == "deploy"] == []


def test_a_failed_endpoint_is_deleted_and_created_again_leaving_nothing_of_the_failure(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    # Given an endpoint whose creation failed: SageMaker keeps its config named, and takes only DeleteEndpoint
    from moto.sagemaker.models import sagemaker_backends

    approved(stack, call)
    assert deploy_call(call, 1)[0] == 202
    failed = call("get_endpoint")[1]
    name = stack.values["AWS::StackName"]
    sagemaker_backends["123456789012"]["us-east-1"].endpoints[name].endpoint_status = "Failed"

    # When the model is deployed again
    status, body = deploy_call(call, 1)

    # Then the endpoint is created again on a config of its own, and the failed config and model are gone
    assert status == 202, body
    assert body["endpoint_config"] != failed["endpoint_config"]
    sagemaker = stack.aws["sagemaker"]
    assert [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [
        body["endpoint_config"]
    ]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [body["model"]]
    # and the audit says so
    actions = [(e["action"]["S"], e["details"]["M"].get("how", {}).get("S")) for e in stack.audit()]
    assert [a for a in actions if a[0] in {"delete", "deploy"}] == [
        ("deploy", "create"),
        ("delete", None),
        ("deploy", "recreate"),
    ]


def test_a_deploy_deletes_the_config_and_model_an_earlier_deployment_left(
    stack: Stack, call: Callable[..., tuple[int, Any]]
) -> None:
    # Given a config and a model that an earlier deployment left an hour ago (a replaced version's, say)
    from datetime import timedelta

    from moto.sagemaker.models import sagemaker_backends

    package = approved(stack, call)
    sagemaker, stale = stack.aws["sagemaker"], f"{stack.values['AWS::StackName']}-v0-0a1b2c3d"
    role = stack.values["SageMakerExecutionRole.Arn"]
    sagemaker.create_model(ModelName=stale, ExecutionRoleArn=role, Containers=[{"ModelPackageName": package}])
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": stale,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
    }
    sagemaker.create_endpoint_config(EndpointConfigName=stale, ProductionVariants=[variant])
    backend = sagemaker_backends["123456789012"]["us-east-1"]
    for made in (backend._models[stale], backend.endpoint_configs[stale]):
        made.creation_time -= timedelta(hours=1)

    # When a model is deployed
    status, body = deploy_call(call, 1)

    # Then only what it deployed is left, and its audit entry names what it removed
    assert status == 202, body
    assert [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [
        body["endpoint_config"]
    ]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [body["model"]]
    [entry] = [e for e in stack.audit() if e["action"]["S"] == "deploy"]
    assert entry["details"]["M"]["removed"]["S"] == stale


def test_no_endpoint_yet_is_a_404_that_says_how_to_make_one(call: Callable[..., tuple[int, Any]]) -> None:
    status, body = call("get_endpoint")

    assert (status, body["error"]["code"]) == (404, "NotFound")
    assert "POST /models/{version}/deploy" in body["error"]["message"]

"""The event-driven functions in-process against moto: the schedule, notifications and the definition sync."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities import parameters
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from control_plane.aws import clients
from local.iam import enforce
from local.ssm_events import ssm_front
from local.template import feature_group_request, local_values
from local.webhooks import WebhookRecorder
from sam_stack.client import send
from tests.integration.conftest import LambdaContext, Stack, configure_slack, event
from tests.integration.stubs import PartialStubber
from tests.integration.test_api import (
    EVALUATION_FOLDER,
    PICTURE,
    processing_job,
    put_picture,
    register_model,
    training_job,
)
from tests.integration.test_outside_decisions import api_call, state_change
from tests.integration.test_schedule import write_record_file

Load = Callable[[str, str], ModuleType]
PIPELINE = "scratch-detector"


def stack_run(stack: Stack) -> str:
    """A run of the stack's pipeline (the execution ARN a registered model's metadata names)."""
    return f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{stack.values['AWS::StackName']}/execution/abcdef123456"


def run_steps(stack: Stack, times: int = 1) -> PartialStubber:
    """ListPipelineExecutionSteps (moto lacks it) answering a run whose Train and Evaluate jobs exist in moto."""
    steps = [
        {"StepName": "Train", "StepStatus": "Succeeded",
         "Metadata": {"TrainingJob": {"Arn": training_job(stack, "pipelines-abcdef123456-Train-x")}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": processing_job(stack, "pipelines-abcdef123456-Evaluate-x")}}},
    ]  # fmt: skip
    stubber = PartialStubber(clients.client("sagemaker"), {"ListPipelineExecutionSteps"})
    for _ in range(times):
        stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps})
    return stubber


def runs(stack: Stack) -> list[dict[str, Any]]:
    name = stack.values["AWS::StackName"]
    return list(stack.aws["sagemaker"].list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"])


def definition(stack: Stack) -> dict[str, Any]:
    described = stack.aws["sagemaker"].describe_pipeline(PipelineName=stack.values["AWS::StackName"])
    return dict(json.loads(described["PipelineDefinition"]))


# ---------- scheduled_start ----------


def test_the_schedule_starts_one_run_per_scheduled_time(stack: Stack, load_function: Load) -> None:
    handler = load_function("scheduled_start", "ScheduledStartFunction")

    # When the same tick is delivered twice, and the next one arrives after the offline store was written
    first = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())
    again = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())
    write_record_file(stack, "20261204T100000Z_new")
    later = handler.lambda_handler(event("scheduled_start", "scheduled", time="2026-12-07T03:00:00Z"), LambdaContext())

    # Then two runs started, one per scheduled time, each audited as the schedule's
    assert first == again
    assert first["started"] is True
    assert later["run_id"] != first["run_id"]
    assert (first["data_check"], later["data_check"]) == ("no-successful-run", "changed")
    assert len(runs(stack)) == 2
    assert sorted(a["actor"]["S"] for a in stack.audit()) == ["schedule", "schedule"]
    described = stack.aws["sagemaker"].describe_pipeline_execution(
        PipelineExecutionArn=next(
            r["PipelineExecutionArn"] for r in runs(stack) if first["run_id"] in r["PipelineExecutionArn"]
        )
    )
    assert described["PipelineExecutionDisplayName"] == "scheduled-20261130-0300"


def test_the_schedule_skips_while_a_run_is_executing(stack: Stack, load_function: Load) -> None:
    handler = load_function("scheduled_start", "ScheduledStartFunction")
    executing = {
        "PipelineExecutionArn": f"arn:aws:sagemaker:us-east-1:123456789012:pipeline/{PIPELINE}/execution/abcdef123456",
        "PipelineExecutionStatus": "Executing",
    }
    with PartialStubber(clients.client("sagemaker"), {"ListPipelineExecutions"}) as stubber:
        stubber.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [executing]})

        outcome = handler.lambda_handler(event("scheduled_start", "scheduled"), LambdaContext())

    assert outcome == {
        "started": False,
        "run_id": None,
        "reason": "run abcdef123456 is still executing",
        "data_check": None,
    }
    assert runs(stack) == []
    assert [(a["subject"]["S"], a["details"]["M"]["reason"]["S"]) for a in stack.audit()] == [
        (f"schedule#{PIPELINE}", "run abcdef123456 is still executing")
    ]


def test_a_malformed_schedule_event_starts_nothing(stack: Stack, load_function: Load) -> None:
    handler = load_function("scheduled_start", "ScheduledStartFunction")

    with pytest.raises(Exception, match="time"):
        handler.lambda_handler(event("scheduled_start", "scheduled", time="next monday"), LambdaContext())

    assert runs(stack) == []


# ---------- notify ----------


def test_a_registered_model_is_posted_once_with_buttons(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    configure_slack(stack)
    arn = register_model(stack, 0.73, stack_run(stack))
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "model_pending")
    sample["detail"]["ModelPackageArn"] = arn

    with run_steps(stack) as stubber:
        first = handler.lambda_handler(sample, LambdaContext())
        second = handler.lambda_handler(sample, LambdaContext())
        stubber.assert_no_pending_responses()

    assert first == second
    [post] = slack.posts("/api/chat.postMessage")
    assert post.authorization == "Bearer xoxb-test"
    assert post.body["channel"] == "C0SCRATCHES"
    assert "0.730" in post.body["text"]
    [actions] = [b for b in post.body["blocks"] if b["type"] == "actions"]
    buttons = actions["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "reject"]
    assert json.loads(buttons[0]["value"]) == {"group": "scratch-detector", "version": 1}


def test_an_approval_request_carries_the_evidence_and_the_picture_uploaded_to_slack(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a registered model whose evaluation (against champion v1) and predictions picture are in S3
    configure_slack(stack)
    bucket = stack.values["ArtifactBucket"]
    report = {
        "metrics": {"map": {"value": 0.73}}, "precision": 0.7, "recall": 0.66, "score_threshold": 0.18,
        "counts": {"images": 12, "boxes": 20}, "per_class": {"scratch": {"true_positives": 13, "false_positives": 5}},
        "model": {"train_images": 40, "validation_images": 8, "training_seconds": 90.0, "best_epoch": 3, "epochs": 4},
        "champion": {"present": True, "version": "1", "map": 0.61, "precision": 0.6, "recall": 0.5},
        "comparison": {"map_difference": 0.12},
    }  # fmt: skip
    stack.aws["s3"].put_object(Bucket=bucket, Key=f"{EVALUATION_FOLDER}/evaluation.json", Body=json.dumps(report))
    put_picture(stack)
    arn = register_model(stack, 0.73, stack_run(stack), f"s3://{bucket}/{EVALUATION_FOLDER}/evaluation.json")
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "model_pending")
    sample["detail"]["ModelPackageArn"] = arn

    # When notify handles the registration (its run's jobs described as notify's role)
    with run_steps(stack) as stubber:
        handler.lambda_handler(sample, LambdaContext())
        stubber.assert_no_pending_responses()

    # Then the picture went up through Slack's file upload with the bot token, and the stand-in serves it back
    [uploaded] = slack.files.values()
    assert uploaded.completed
    assert uploaded.content == PICTURE
    assert slack.posts("/api/files.getUploadURLExternal")[0].authorization == "Bearer xoxb-test"
    with urllib.request.urlopen(
        urllib.request.Request(slack.file_url(uploaded), headers={"Authorization": "Bearer xoxb-test"}), timeout=5
    ) as served:
        assert served.read() == PICTURE
    # And the request shows the comparison, the figures, the run's link, the picture and the buttons
    [post] = slack.posts("/api/chat.postMessage")
    blocks = post.body["blocks"]
    assert [b["type"] for b in blocks] == ["section", "image", "actions"]
    assert blocks[1]["slack_file"] == {"id": uploaded.id}
    shown = blocks[0]["text"]["text"]
    assert "0.730 against champion v1's 0.610 on the same images (+0.120)" in shown
    assert "*images:* 40 train / 8 validation / 12 test" in shown
    assert "precision 0.70, recall 0.66 (13 of 20 scratches found, 5 false detections)" in shown
    assert "/runs/abcdef123456|abcdef123456>" in shown
    # and the run's estimated cost at the config's prices: moto's Evaluate ran 0 s, its Train reports no billable time
    assert (
        "*estimated cost:* about 0.00 USD (on-demand list prices, us-east-1, 2026-12-04; 1 job(s) without a price)"
        in shown
    )


def test_a_failed_run_is_posted_with_its_failing_step(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    configure_slack(stack)
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "run_failed")
    steps = [
        {"StepName": "Preprocess", "StepStatus": "Succeeded"},
        {"StepName": "Train", "StepStatus": "Failed", "FailureReason": "ClientError: AlgorithmError: out of memory"},
    ]
    with PartialStubber(clients.client("sagemaker"), {"ListPipelineExecutionSteps"}) as stubber:
        stubber.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps})

        handler.lambda_handler(sample, LambdaContext())
        handler.lambda_handler(sample, LambdaContext())  # SageMaker said it twice

        stubber.assert_no_pending_responses()
    [post] = slack.posts("/api/chat.postMessage")
    assert "Train" in post.body["text"]
    assert "out of memory" in post.body["text"]


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("model_pending", {"ModelPackageGroupName": "someone-else"}),
        ("model_approved", {"ModelPackageGroupName": "someone-else"}),
        ("run_failed", {"currentPipelineExecutionStatus": "Succeeded"}),
        ("run_failed", {"pipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/other/execution/x"}),
    ],
)
def test_events_not_for_us_post_nothing(
    stack: Stack, slack: WebhookRecorder, load_function: Load, name: str, detail: dict[str, str]
) -> None:
    configure_slack(stack)
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", name)
    sample["detail"].update(detail)

    assert handler.lambda_handler(sample, LambdaContext()) == {"posted": False}
    assert slack.received == []
    assert stack.audit() == []


def test_without_a_slack_secret_nothing_is_posted_and_the_event_can_be_retried(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    arn = register_model(stack, 0.73, stack_run(stack))
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "model_pending")
    sample["detail"]["ModelPackageArn"] = arn

    with run_steps(stack, times=2):
        # the secret still holds the deployed empty values
        with pytest.raises(Exception, match="Slack is not configured"):
            handler.lambda_handler(sample, LambdaContext())
        assert slack.received == []

        # once it is filled in, the retried event posts
        configure_slack(stack)
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        handler.lambda_handler(sample, LambdaContext())
    assert len(slack.posts("/api/chat.postMessage")) == 1


# ---------- sync_definition ----------


def set_config(stack: Stack, text: str) -> None:
    stack.aws["ssm"].put_parameter(Name=stack.values["ConfigParameter"], Value=text, Type="String", Overwrite=True)


def with_hyperparameters(text: str, **values: object) -> str:
    """The config text with these training hyperparameters set (the rest as the text has them)."""
    config = yaml.safe_load(text)
    config["training"].setdefault("hyperparameters", {}).update(values)
    return yaml.safe_dump(config, sort_keys=False)


def config_text(stack: Stack) -> str:
    return str(stack.aws["ssm"].get_parameter(Name=stack.values["ConfigParameter"])["Parameter"]["Value"])


def test_a_config_change_rebuilds_the_pipeline_and_an_unchanged_one_does_not(stack: Stack, load_function: Load) -> None:
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    set_config(stack, with_hyperparameters(config_text(stack), epochs=60))

    changed = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())
    unchanged = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    assert changed["action"] == "update"
    assert unchanged["action"] == "none"
    epochs = next(p for p in definition(stack)["Parameters"] if p["Name"] == "NumEpochs")
    assert epochs["DefaultValue"] == 60


def test_an_invalid_config_leaves_the_pipeline_and_alerts_slack(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    configure_slack(stack)
    before = definition(stack)
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    set_config(stack, with_hyperparameters(config_text(stack), epochs=-1, batch_size="x"))

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    assert outcome == {"action": "rejected", "problems": 2}
    assert definition(stack) == before
    [alert] = slack.posts("/api/chat.postMessage")
    blocks = json.dumps(alert.body["blocks"])
    assert "training.hyperparameters.epochs" in blocks
    assert "training.hyperparameters.batch_size" in blocks


def deployment(stack: Stack, slack: WebhookRecorder, kind: str, config: str) -> dict[str, Any]:
    """The custom resource's event, with the config text CloudFormation passes (the parameter's new value)."""
    sample = event("sync_definition", f"deploy_{kind}", ResponseURL=f"{slack.url}cfn/{kind}")
    return {**sample, "ResourceProperties": {**sample["ResourceProperties"], "Config": config}}


def test_a_deployment_builds_from_the_config_it_deployed_not_from_ssm(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a deployment that wrote 7 epochs, and SSM already edited since to 9
    deployed = with_hyperparameters(config_text(stack), epochs=7)
    set_config(stack, with_hyperparameters(config_text(stack), epochs=9))
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    outcome = handler.lambda_handler(deployment(stack, slack, "update", deployed), LambdaContext())

    # Then the pipeline is the deployment's
    assert outcome["action"] == "update"
    declared = {p["Name"]: p.get("DefaultValue") for p in definition(stack)["Parameters"]}
    assert declared["NumEpochs"] == 7


def test_a_failure_after_answering_cloudformation_is_not_raised_for_lambda_to_retry(
    stack: Stack, slack: WebhookRecorder, load_function: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("SageMaker is having a bad day")

    monkeypatch.setattr(handler.DEPLOYER, "upsert", broken)

    # When the sync fails unexpectedly, Then CloudFormation hears it and the invocation ends without raising,
    # so Lambda's asynchronous retries cannot change the pipeline after CloudFormation rolled back
    outcome = handler.lambda_handler(deployment(stack, slack, "update", config_text(stack)), LambdaContext())

    assert outcome == {"action": "failed", "error": "RuntimeError"}
    [answer] = slack.posts("/cfn/")
    assert answer.body["Status"] == "FAILED"
    assert "SageMaker is having a bad day" in answer.body["Reason"]


def test_a_deployment_creates_the_pipeline_and_answers_cloudformation(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    stack.aws["sagemaker"].delete_pipeline(PipelineName=stack.values["AWS::StackName"], ClientRequestToken="x" * 32)
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    outcome = handler.lambda_handler(deployment(stack, slack, "create", config_text(stack)), LambdaContext())

    assert outcome["action"] == "create"
    assert definition(stack)["Version"] == "2020-12-01"
    [answer] = slack.posts("/cfn/")
    assert answer.method == "PUT"
    assert (answer.body["Status"], answer.body["PhysicalResourceId"]) == ("SUCCESS", "scratch-detector")
    assert answer.body["Data"] == {"PipelineName": "scratch-detector", "Action": "create"}


def test_a_deployment_with_an_invalid_config_fails_the_resource(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    before = definition(stack)
    invalid = config_text(stack).replace("map_threshold: 0.3", "map_threshold: 3")
    set_config(stack, invalid)
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    handler.lambda_handler(deployment(stack, slack, "update", invalid), LambdaContext())

    [answer] = slack.posts("/cfn/")
    assert answer.body["Status"] == "FAILED"
    assert "evaluation.map_threshold" in answer.body["Reason"]
    assert definition(stack) == before


def test_a_deployment_naming_an_image_not_in_ecr_fails_and_creates_nothing(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given a first deployment whose tag was never pushed
    stack.aws["sagemaker"].delete_pipeline(PipelineName=stack.values["AWS::StackName"], ClientRequestToken="x" * 32)
    missing = config_text(stack).replace("scratch-detector:latest", "scratch-detector:0a1b2c3")
    set_config(stack, missing)
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    handler.lambda_handler(deployment(stack, slack, "create", missing), LambdaContext())

    [answer] = slack.posts("/cfn/")
    assert answer.body["Status"] == "FAILED"
    assert "image_uri: no image" in answer.body["Reason"]
    assert "scratch-detector:0a1b2c3" in answer.body["Reason"]
    assert stack.aws["sagemaker"].list_pipelines()["PipelineSummaries"] == []


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/scratch-detector:0a1b2c3", "no image"),
        # the function may read only the stack's repository: AWS answers AccessDenied, whether or not it exists
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/someone-else:v1", "outside this stack's ECR repository"),
    ],
)
def test_a_config_change_to_a_missing_image_leaves_the_pipeline_and_alerts(
    stack: Stack, slack: WebhookRecorder, load_function: Load, image: str, reason: str
) -> None:
    configure_slack(stack)
    before = definition(stack)
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    set_config(stack, config_text(stack).replace(stack.config.image_uri, image))

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    assert outcome == {"action": "rejected", "problems": 1}
    assert definition(stack) == before
    [alert] = slack.posts("/api/chat.postMessage")
    assert reason in json.dumps(alert.body["blocks"])
    denied = enforce.take()
    assert [d.request.resource.rsplit("/", 1)[-1] for d in denied] == (["someone-else"] if "outside" in reason else [])


def without_offline_store_uri(stack: Stack) -> str:
    """The config as a deployment writes it when OfflineStoreUri is left empty (the usual case)."""
    parameter = stack.template.resource("ConfigParameter")["Properties"]["Value"]
    return str(stack.template.resolve(parameter, local_values({"OfflineStoreUri": ""})))


def test_the_pipeline_reads_the_offline_store_where_the_feature_group_says_it_is(
    stack: Stack, load_function: Load
) -> None:
    # Given the template's feature group, and a config that does not say where its offline store is
    stack.aws["sagemaker"].create_feature_group(**feature_group_request(stack.template))
    group = stack.aws["sagemaker"].describe_feature_group(FeatureGroupName=stack.config.feature_group.name)
    resolved = group["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    set_config(stack, without_offline_store_uri(stack))
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    # Then the pipeline's input is the store's resolved prefix (<bucket>/feature-store/.../<name>-<time>/data)
    assert outcome["action"] == "update"
    preprocess = next(step for step in definition(stack)["Steps"] if step["Name"] == "Preprocess")
    (store,) = preprocess["Arguments"]["ProcessingInputs"]
    assert store["S3Input"]["S3Uri"] == resolved
    assert resolved.startswith(f"s3://{stack.values['ArtifactBucket']}/feature-store/")


def test_a_config_whose_feature_group_is_missing_leaves_the_pipeline_and_alerts(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    configure_slack(stack)
    before = definition(stack)
    set_config(stack, without_offline_store_uri(stack))
    handler = load_function("sync_definition", "SyncDefinitionFunction")

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    assert outcome == {"action": "rejected", "problems": 1}
    assert definition(stack) == before
    [alert] = slack.posts("/api/chat.postMessage")
    assert "feature_group.name" in json.dumps(alert.body["blocks"])
    assert "CreateFeatureGroup" in json.dumps(alert.body["blocks"])


def test_a_config_change_to_a_pushed_image_updates_the_pipeline(stack: Stack, load_function: Load) -> None:
    # Given a new image pushed under the commit's tag
    repository = stack.values["ImageRepository"]
    manifest = stack.aws["ecr"].batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "latest"}])
    stack.aws["ecr"].put_image(
        repositoryName=repository, imageManifest=manifest["images"][0]["imageManifest"], imageTag="0a1b2c3"
    )
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    set_config(stack, config_text(stack).replace("scratch-detector:latest", "scratch-detector:0a1b2c3"))

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    assert outcome["action"] == "update"
    train = next(s for s in definition(stack)["Steps"] if s["Type"] == "Training")
    assert train["Arguments"]["AlgorithmSpecification"]["TrainingImage"].endswith("scratch-detector:0a1b2c3")


def test_a_config_change_to_an_image_pushed_as_an_index_leaves_the_pipeline_and_alerts(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given the commit's tag pushed as an OCI index (a builder that added attestations): SageMaker cannot run it
    configure_slack(stack)
    before = definition(stack)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
    stack.aws["ecr"].put_image(repositoryName=stack.values["ImageRepository"], imageManifest=index, imageTag="0a1b2c3")
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    set_config(stack, config_text(stack).replace("scratch-detector:latest", "scratch-detector:0a1b2c3"))

    outcome = handler.lambda_handler(event("sync_definition", "parameter_changed"), LambdaContext())

    # Then the pipeline keeps its image and the alert names the manifest type
    assert outcome == {"action": "rejected", "problems": 1}
    assert definition(stack) == before
    [alert] = slack.posts("/api/chat.postMessage")
    assert "application/vnd.oci.image.index.v1+json" in json.dumps(alert.body["blocks"])


def test_deleting_the_stack_deletes_the_pipeline_once(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    handler = load_function("sync_definition", "SyncDefinitionFunction")
    delete = event("sync_definition", "deploy_delete", ResponseURL=f"{slack.url}cfn/delete")

    handler.lambda_handler(delete, LambdaContext())
    handler.lambda_handler(delete, LambdaContext())

    assert [a.body["Status"] for a in slack.posts("/cfn/")] == ["SUCCESS", "SUCCESS"]
    names = stack.aws["sagemaker"].list_pipelines()["PipelineSummaries"]
    assert names == []


# ---------- the local fronts answer as the services do, whatever the client ----------


def test_a_client_without_the_local_checks_gets_the_services_400_from_the_front(stack: Stack) -> None:
    # Given the SSM front (it raises the parameter-change events) and a client that checks nothing itself
    front = ssm_front(stack.aws["ssm"].meta.endpoint_url, stack.aws["events"]).start()
    try:

        def put(request: dict[str, Any]) -> tuple[int, Any]:
            # signed as any SDK or the AWS CLI signs (moto routes by the credential scope), checked by nothing
            data = json.dumps(request).encode()
            signed = AWSRequest(
                method="POST",
                url=front.endpoint,
                data=data,
                headers={"X-Amz-Target": "AmazonSSM.PutParameter", "Content-Type": "application/x-amz-json-1.1"},
            )
            SigV4Auth(Credentials("testing", "testing"), "ssm", "us-east-1").add_auth(signed)
            return send("POST", front.endpoint, headers=dict(signed.headers.items()), data=data)

        # When it sends a type the API does not have
        status, body = put({"Name": "/raw/client", "Value": "v", "Type": "Text"})

        # Then the front answers what SSM answers, and nothing was written
        assert (status, body["__type"]) == (400, "ValidationException")
        assert (
            "Value 'Text' at 'Type' failed to satisfy constraint: Member must satisfy enum value set" in body["message"]
        )
        assert (
            stack.aws["ssm"].describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/raw/client"]}])[
                "Parameters"
            ]
            == []
        )
        # and a valid request goes through
        assert put({"Name": "/raw/client", "Value": "v", "Type": "String"})[0] == 200
    finally:
        front.stop()


# ---------- auto_deploy ----------


def approve_v1(stack: Stack) -> None:
    register_model(stack, 0.73, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdef123456")
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{stack.values['AWS::StackName']}/1"
    stack.aws["sagemaker"].update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")


def deployments(stack: Stack) -> list[dict[str, Any]]:
    return [e for e in stack.audit() if e["action"]["S"] == "deploy"]


def test_an_approval_is_deployed_once_when_the_config_says_so(stack: Stack, load_function: Load) -> None:
    # Given a model approved through the API (the control plane records the decision), and on_approval set
    register_model(stack, 0.73, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdef123456")
    assert api_call(load_function, "approve_model")[0] == 200
    set_config(stack, config_text(stack).replace("on_approval: false", "on_approval: true"))
    handler = load_function("auto_deploy", "AutoDeployFunction")
    approval = state_change(stack, "auto_deploy", "approved")

    # When the approval's event arrives twice (EventBridge delivers at least once)
    first = handler.lambda_handler(approval, LambdaContext())
    again = handler.lambda_handler(approval, LambdaContext())

    # Then the model was deployed once, and both answers say so
    assert (first["deployed"], first["version"]) == (True, 1)
    assert again == first
    [entry] = deployments(stack)
    assert (entry["source"]["S"], entry["actor"]["S"]) == ("event", "event:model-approved")
    assert len(stack.aws["sagemaker"].list_endpoint_configs()["EndpointConfigs"]) == 1


def test_an_approval_replaces_a_failed_endpoint_and_what_it_failed_on(stack: Stack, load_function: Load) -> None:
    # Given a model approved through the API, on_approval set, and the stack's endpoint Failed on another config
    from moto.sagemaker.models import sagemaker_backends

    register_model(stack, 0.73, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdef123456")
    assert api_call(load_function, "approve_model")[0] == 200
    name, sagemaker = stack.values["AWS::StackName"], stack.aws["sagemaker"]
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{name}/1"
    failed = f"{name}-v1-0a1b2c3d"
    sagemaker.create_model(
        ModelName=failed,
        ExecutionRoleArn=stack.values["SageMakerExecutionRole.Arn"],
        Containers=[{"ModelPackageName": package}],
    )
    variant = {"VariantName": "AllTraffic", "ModelName": failed, "InstanceType": "ml.m5.large"}
    sagemaker.create_endpoint_config(
        EndpointConfigName=failed, ProductionVariants=[{**variant, "InitialInstanceCount": 1}]
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=failed)
    sagemaker_backends["123456789012"]["us-east-1"].endpoints[name].endpoint_status = "Failed"
    set_config(stack, config_text(stack).replace("on_approval: false", "on_approval: true"))

    # When the approval's event arrives
    outcome = load_function("auto_deploy", "AutoDeployFunction").lambda_handler(
        state_change(stack, "auto_deploy", "approved"), LambdaContext()
    )

    # Then the endpoint was created again on a new config, and the failed config and model are gone
    assert outcome["deployed"] is True
    assert outcome["endpoint_config"] != failed
    assert [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]] == [
        outcome["endpoint_config"]
    ]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == [outcome["model"]]
    assert deployments(stack)[0]["details"]["M"]["how"]["S"] == "recreate"


def test_an_approval_is_not_deployed_unless_the_config_says_so(stack: Stack, load_function: Load) -> None:
    approve_v1(stack)
    handler = load_function("auto_deploy", "AutoDeployFunction")

    outcome = handler.lambda_handler(event("auto_deploy", "approved"), LambdaContext())

    assert outcome == {"deployed": False, "reason": "deployment.on_approval is false"}
    assert deployments(stack) == []

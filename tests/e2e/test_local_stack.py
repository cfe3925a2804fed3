"""The product end to end on the local stack: HTTP in, SageMaker-like executions, Slack out and back in."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from control_plane.approval_request import button_value
from local.drive import (
    approval_request,
    endpoint_until,
    follow,
    ingest,
    model_until,
    press,
    slack_post,
    synthesize,
    until,
)
from local.emulator import REGION
from local.executor.host_names import HostNames
from local.stack import LOCAL_RUNNER_KEY, SLACK_APPROVER, LocalStack
from rollout.environments import environments
from rollout.start_run import start_run as rollout_start_run
from sam_stack.client import Api
from tests.e2e.conftest import declared_default, set_config, start_run, tiny_config


def test_a_run_registers_a_model_that_is_approved_through_slack(stack: LocalStack, api: Api) -> None:
    # When a run starts over HTTP (the threshold lowered: one tiny epoch learns little)
    run_id = start_run(api, {"MapThreshold": 0.0})
    detail = follow(api, run_id)

    # Then every step ran, and the run shows its metrics, its report and its model
    assert detail["status"] == "Succeeded", detail
    assert [s["name"] for s in detail["steps"]] == ["Preprocess", "Train", "Evaluate", "CheckMap", "Register"]
    assert all(s["status"] == "Succeeded" for s in detail["steps"])
    # each job step has its job's instances and billable seconds, priced at the config's table
    jobs = {s["name"]: s["job"] for s in detail["steps"] if s["job"]}
    assert set(jobs) == {"Preprocess", "Train", "Evaluate"}
    assert all(j["instance_count"] == 1 and j["billable_seconds"] > 0 for j in jobs.values())
    assert (jobs["Train"]["instance_type"], jobs["Train"]["spot"]) == ("ml.c5.4xlarge", True)
    assert jobs["Train"]["training_seconds"] >= jobs["Train"]["billable_seconds"]
    assert detail["cost"]["complete"] is True
    assert detail["cost"]["estimated"] == pytest.approx(sum(j["estimated_cost"] for j in jobs.values()))
    assert "validation:map" in detail["training_metrics"]
    assert "map" in detail["evaluation"]["metrics"]
    model = detail["model"]
    assert model["run_id"] == run_id
    assert model["approval_status"] == "PendingManualApproval"
    # the package serves with the threshold its evaluation counted with
    package = stack.client("sagemaker").describe_model_package(ModelPackageName=model["arn"])
    [container] = package["InferenceSpecification"]["Containers"]
    assert float(container["Environment"]["SCORE_THRESHOLD"]) == detail["evaluation"]["score_threshold"]
    assert detail["evaluation"]["score_threshold_source"] in {"model", "floor", "default"}
    # and with the NMS threshold Train chose with it on the validation split (or GluonCV's, saying why)
    assert 0.2 <= detail["evaluation"]["nms_threshold"] <= 0.7
    assert detail["evaluation"]["nms_threshold_source"]
    # and the model names the data it learned from: the run's as-of time and the manifest in S3, with its digest
    pinned = api.call("GET", f"/models/{model['version']}")[1]["dataset"]
    assert pinned["as_of"] == detail["parameters"]["DataAsOf"] == detail["dataset"]["as_of"]
    assert pinned["manifest_sha256"] == detail["dataset"]["manifest_sha256"]
    bucket, key = pinned["manifest_uri"].removeprefix("s3://").split("/", 1)
    written = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(written).hexdigest() == pinned["manifest_sha256"]
    lines = [json.loads(line) for line in written.decode().splitlines()]
    assert len(lines) == detail["dataset"]["images"]
    assert all(line["version_id"] for line in lines)  # each image read at its version in the versioned bucket

    # When the notify function's message is answered with Approve, signed as Slack signs it, while the
    # decision worker has not yet started
    message = approval_request(stack, model["version"])
    version = model["version"]
    with stack.dispatcher.hold("SlackDecisionsFunction"):
        code, answer = press(stack, message, "approve", reply_to="actions/1")
        # Then Slack has its answer before anything is decided
        assert (code, answer) == (200, None)
        assert api.call("GET", f"/models/{version}")[1]["approval_status"] == "PendingManualApproval"
        # and SQS delivering the click twice (at least once) changes nothing below
        duplicate(stack, "DecisionQueue")

    # Then the worker approves the model, once, as the Slack user, and updates the message
    approved = model_until(api, version, "Approved", timeout=30)
    assert SLACK_APPROVER in approved["approval_description"]
    slack_post(stack, "approved", path="/actions/")
    assert stack.queued("DecisionQueue") == 0
    decisions = [e for e in stack.audit() if e["subject"]["S"].endswith(f"/{version}")]
    assert [e["action"]["S"] for e in decisions] == ["approve"]


def test_a_click_that_cannot_be_decided_is_told_in_the_messages_thread(stack: LocalStack) -> None:
    # Given an approval message for a version that was never registered
    value = button_value(stack.group, 999)
    message = {"channel": "C0LOCAL", "ts": "1795000000.999999", "blocks": [{"elements": [
        {"type": "button", "action_id": "reject", "value": value}]}]}  # fmt: skip

    code, _ = press(stack, message, "reject", reply_to="x")

    # Then the click is answered, and the worker says in the thread why nothing was decided
    assert code == 200
    post = slack_post(stack, " v999, but")
    assert (post.body["thread_ts"], post.body["channel"]) == ("1795000000.999999", "C0LOCAL")


def duplicate(stack: LocalStack, queue: str) -> None:
    """Send the one message waiting on `queue` once more, as SQS may deliver it."""
    url = stack.queue_url(queue)
    [waiting] = stack.aws["sqs"].receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=5)["Messages"]
    stack.aws["sqs"].send_message(QueueUrl=url, MessageBody=waiting["Body"])


def test_a_run_on_two_training_instances_trains_one_model_on_both_and_registers_it(stack: LocalStack, api: Api) -> None:
    # When a run asks for two training instances (a run-time parameter; the tiny batch of 4 splits in two)
    run_id = start_run(api, {"MapThreshold": 0.0, "TrainingInstanceCount": 2})
    detail = follow(api, run_id)

    # Then it registers a model, trained by two hosts as one job
    assert detail["status"] == "Succeeded", detail
    assert detail["model"]["run_id"] == run_id
    train = next(s for s in detail["steps"] if s["name"] == "Train")
    name = train["job_arn"].rsplit("/", 1)[-1]
    described = stack.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert described["ResourceConfig"]["InstanceCount"] == 2
    job = stack.executor.jobs[name]
    log = job.log.read_text()
    checksums = {host: line.rsplit("checksum=", 1)[1] for host in job.hosts for line in log.splitlines()
                 if line.startswith(f"[{host}] ") and "checksum=" in line}  # fmt: skip
    assert sorted(checksums) == ["algo-1", "algo-2"]
    assert len(set(checksums.values())) == 1  # the same weights on both hosts
    assert (job.root("algo-1") / "model" / "model-symbol.json").is_file()
    assert not any((job.root("algo-2") / "model").iterdir())
    # and both waited for the host names, which resolve late, before they started the parameter server
    for host in job.hosts:
        lines = [line for line in log.splitlines() if line.startswith(f"[{host}] ")]
        waited = next(i for i, line in enumerate(lines) if "waiting for host names unresolved=algo-1,algo-2" in line)
        resolved = next(i for i, line in enumerate(lines) if "host names resolved hosts=algo-1,algo-2" in line)
        assert waited < resolved < next(i for i, line in enumerate(lines) if "parameter server started" in line)


def test_a_run_on_two_instances_whose_second_host_never_resolves_fails_naming_it(
    stack: LocalStack, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cluster whose algo-2 never comes up, and an image that waits 2 s for it rather than 15 minutes
    monkeypatch.setattr(stack.executor.runner, "host_names", HostNames(never=frozenset({"algo-2"})))
    monkeypatch.setitem(stack.executor.runner.environment, "DETECTOR_HOST_RESOLUTION_SECONDS", "2")

    run_id = start_run(api, {"MapThreshold": 0.0, "TrainingInstanceCount": 2})
    detail = follow(api, run_id)

    # Then the run fails at its Train step with the reason, naming the host
    assert detail["status"] == "Failed", detail
    train = next(s for s in detail["steps"] if s["name"] == "Train")
    assert train["status"] == "Failed"
    assert train["failure_reason"] == (
        "AlgorithmError: host names did not resolve within 2 s: algo-2 (Name or service not known); the cluster's "
        "hosts never all came up (DETECTOR_HOST_RESOLUTION_SECONDS=2)"
    )
    assert detail["model"] is None


def test_a_run_below_the_threshold_fails_naming_the_map_and_the_threshold(stack: LocalStack, api: Api) -> None:
    run_id = start_run(api, {"MapThreshold": 1.5})

    detail = follow(api, run_id)

    assert detail["status"] == "Failed"
    assert "is below the threshold 1.5" in detail["failure_reason"]
    assert detail["failure_reason"].startswith("Test mAP ")
    assert detail["model"] is None
    assert [s["name"] for s in detail["steps"]][-1] == "Fail"


@pytest.mark.parametrize(
    "parameter", [("ModelApprovalStatus", "Approved"), ("InputDataUri", "s3://anywhere/easy-test-split")]
)
def test_a_direct_start_cannot_set_the_gate(stack: LocalStack, parameter: tuple[str, str]) -> None:
    # Given someone allowed StartPipelineExecution, going around the API
    name, value = parameter
    sagemaker, pipeline = stack.client("sagemaker"), stack.values["AWS::StackName"]
    before = len(sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"])

    # When they name a gate parameter, Then SageMaker refuses an undeclared parameter and starts nothing
    with pytest.raises(sagemaker.exceptions.ClientError) as refused:
        sagemaker.start_pipeline_execution(PipelineName=pipeline, PipelineParameters=[{"Name": name, "Value": value}])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert name in refused.value.response["Error"]["Message"]
    assert len(sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]) == before


def test_a_failing_step_reports_its_reason(stack: LocalStack, api: Api) -> None:
    run_id = start_run(api, {"BatchSize": 0})

    detail = follow(api, run_id)

    assert detail["status"] == "Failed"
    train = next(s for s in detail["steps"] if s["name"] == "Train")
    assert train["status"] == "Failed"
    assert "batch_size" in train["failure_reason"]
    assert train["job_arn"].split("/")[-1].startswith(f"pipelines-{run_id}-train-")
    # and Slack heard of it, with the step and the reason
    slack_post(stack, run_id, timeout=60)
    [post] = [p for p in stack.slack.posts("/api/chat.postMessage") if run_id in p.body.get("text", "")]
    assert "Train" in post.body["text"]
    assert "batch_size" in post.body["text"]


def test_a_running_execution_stops(stack: LocalStack, api: Api) -> None:
    run_id = start_run(api, {"NumEpochs": 500, "MapThreshold": 0.0})
    detail = follow(api, run_id, until_status={"Executing"})
    deadline = time.monotonic() + 60
    while not any(s["name"] == "Train" and s["status"] == "Executing" for s in detail["steps"]):
        assert time.monotonic() < deadline
        time.sleep(0.5)
        detail = follow(api, run_id, until_status={"Executing", "Succeeded", "Failed", "Stopped"})

    status, stopped = api.call("POST", f"/runs/{run_id}/stop")
    detail = follow(api, run_id, until_status={"Stopped", "Failed", "Succeeded"}, timeout=60)

    assert status == 200
    assert stopped["status"] in {"Stopping", "Stopped"}
    assert detail["status"] == "Stopped"
    train = next(s for s in detail["steps"] if s["name"] == "Train")
    assert train["status"] == "Stopped"
    job = stack.executor.jobs[train["job_arn"].rsplit("/", 1)[-1]]
    assert not (job.folder / "pid").exists()
    # stopping again is refused: the run is no longer executing
    assert api.call("POST", f"/runs/{run_id}/stop")[0] == 409


def test_two_concurrent_runs_keep_their_outputs_apart(stack: LocalStack, api: Api) -> None:
    first, second = start_run(api, {"MapThreshold": 0.0}), start_run(api, {"MapThreshold": 0.0, "Seed": 7})

    one, two = follow(api, first), follow(api, second)

    assert (one["status"], two["status"]) == ("Succeeded", "Succeeded")
    assert f"/{first}/" in one["model"]["arn"] or one["model"]["run_id"] == first
    urls = [api.call("GET", f"/models/{d['model']['version']}")[1]["model_data_url"] for d in (one, two)]
    assert f"/{first}/Train/" in urls[0]
    assert f"/{second}/Train/" in urls[1]
    prefix = f"pipeline/{stack.values['AWS::StackName']}/"
    keys = [o["Key"] for o in stack.aws["s3"].list_objects_v2(Bucket=stack.bucket, Prefix=prefix)["Contents"]]
    assert {k for k in keys if f"/{first}/" in k}.isdisjoint({k for k in keys if f"/{second}/" in k})
    assert any(k.endswith(f"{first}/Evaluate/evaluation/evaluation.json") for k in keys)
    assert any(k.endswith(f"{second}/Evaluate/evaluation/evaluation.json") for k in keys)


def test_a_repeated_start_with_the_same_key_starts_one_execution(stack: LocalStack, api: Api) -> None:
    before = len(stack.executor.executions)

    first = start_run(api, {"MapThreshold": 0.0}, key="retry-me")
    second = start_run(api, {"MapThreshold": 0.0}, key="retry-me")

    assert first == second
    assert len(stack.executor.executions) == before + 1
    follow(api, first)


def test_a_config_change_resyncs_the_definition_and_the_next_run_uses_it(stack: LocalStack, api: Api) -> None:
    # When the config in SSM changes (the rule delivers the change to sync_definition)
    set_config(stack, tiny_config(stack, epochs=2), epochs=2)

    # Then the next run, without overrides, trains with the new default
    run_id = start_run(api, {"MapThreshold": 0.0})
    detail = follow(api, run_id)
    assert detail["parameters"]["NumEpochs"] == "2"
    assert detail["status"] == "Succeeded"
    set_config(stack, tiny_config(stack), epochs=1)
    assert declared_default(stack, "NumEpochs") == 1


def audit_entries(api: Api, subject: str) -> list[dict[str, Any]]:
    """GET /audit of `subject`, newest first."""
    status, body = api.call("GET", f"/audit?subject={quote(subject)}")
    assert status == 200, body
    return list(body["entries"])


def test_the_schedule_starts_a_run_per_tick_only_when_the_labelled_data_changed(
    stack: LocalStack, api: Api, tmp_path: Path
) -> None:
    # Given the template's schedule rule (moto keeps it; the dispatcher fires it, as EventBridge would), and a run
    # that succeeded on everything the offline store holds
    [rule] = [r for r in stack.dispatcher.rules if r.schedule]
    assert rule.function == "ScheduledStartFunction"
    last = start_run(api, {"MapThreshold": 0.0})
    assert follow(api, last)["status"] == "Succeeded"
    before = set(stack.executor.executions)
    schedule = f"schedule#{stack.values['AWS::StackName']}"

    # When a tick comes with nothing written since
    quiet = datetime.now(UTC).replace(microsecond=0)
    stack.dispatcher.fire(rule, quiet)

    # Then it starts nothing, and GET /audit says why under the schedule's subject
    [skip] = until(
        lambda: audit_entries(api, schedule), bool, timeout=30, every=0.5, waited="the schedule's skip in the audit"
    )
    assert (skip["action"], skip["source"], skip["details"]["last_successful_run"]) == ("skip", "schedule", last)
    assert f"nothing written to the offline store since run {last}'s data time" in skip["details"]["reason"]
    assert set(stack.executor.executions) == before

    # When one more labelled image is ingested (ingest waits until the offline store holds it), and the next tick is
    # delivered twice
    synthesize(tmp_path / "one-more", count=1, options=("--seed", "31"))
    ingest(stack, tmp_path / "one-more")
    time.sleep(1.1)  # the tick's time (whole seconds) after the record's write_time
    tick = datetime.now(UTC).replace(microsecond=0)
    stack.dispatcher.fire(rule, tick)
    stack.dispatcher.fire(rule, tick)

    # Then one run starts, named after the scheduled time; its start says what changed; it runs to its end
    deadline = time.monotonic() + 30
    while len(set(stack.executor.executions) - before) < 1:
        assert time.monotonic() < deadline, "the schedule started nothing"
        time.sleep(0.5)
    time.sleep(3)  # the second delivery has had its turn
    [arn] = set(stack.executor.executions) - before
    execution = stack.executor.executions[arn]
    assert execution.display_name == f"scheduled-{tick:%Y%m%d-%H%M}"
    [start] = audit_entries(api, f"run#{execution.id}")
    assert f"offline-store object(s) written since run {last}'s data time" in start["details"]["data_check"]
    assert len(audit_entries(api, schedule)) == 1
    follow(api, execution.id)


def test_make_start_run_finds_the_api_from_the_stacks_outputs_and_starts_one_run_per_key(
    stack: LocalStack, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the dev stack, as CloudFormation describes it, serving the local API
    env = environments()["dev"]
    outputs = {
        "ApiUrl": stack.api.url,
        "PipelineName": stack.values["AWS::StackName"],
        "ImageRepositoryUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{env.stack_name}",
        "SlackSecretArn": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{stack.values['SlackSecret']}",
    }
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    stack.client("cloudformation").create_stack(StackName=env.stack_name, TemplateBody=json.dumps(template))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = len(stack.executor.executions)

    # When CI (signing as a run operator: the deploy role may call only POST /runs) starts a run for a commit, and
    # a re-run of the job starts it again
    ci = boto3.Session(aws_access_key_id=LOCAL_RUNNER_KEY, aws_secret_access_key="local-secret", region_name=REGION)
    first = rollout_start_run(env, ci, idempotency_key="0a1b2c3d4e5f", description="CI run for 0a1b2c3d4e5f")
    again = rollout_start_run(env, ci, idempotency_key="0a1b2c3d4e5f", description="CI run for 0a1b2c3d4e5f")

    # Then one execution started, signed as the caller, and its links are printed and in the job summary
    assert first["run_id"] == again["run_id"]
    assert len(stack.executor.executions) == before + 1
    assert first["execution_arn"].endswith(f"/execution/{first['run_id']}")
    assert f"{stack.api.url}/runs/{first['run_id']}" in capsys.readouterr().out
    assert first["run_id"] in summary.read_text()
    # (the default threshold is above what one 64x64 epoch reaches, so the run trains and then fails CheckMap)
    steps = {step["name"]: step["status"] for step in follow(api, first["run_id"])["steps"]}
    assert steps["Train"] == "Succeeded"


def registered(api: Api) -> int:
    """A finished run's model version (pending approval)."""
    detail = follow(api, start_run(api, {"MapThreshold": 0.0}))
    assert detail["status"] == "Succeeded", detail
    return int(detail["model"]["version"])


def test_an_approved_model_is_served_by_the_stacks_endpoint_and_a_new_one_replaces_it(
    stack: LocalStack, api: Api
) -> None:
    # Given two registered models, the first approved
    first, second = registered(api), registered(api)
    assert api.call("POST", f"/models/{first}/approve", {"comment": "good enough"})[0] == 200

    # When the pending one is deployed, nothing changes
    status, refused = api.call("POST", f"/models/{second}/deploy")
    assert (status, refused["error"]["code"]) == (409, "Conflict")
    assert api.call("GET", "/endpoint")[0] == 404

    # When the approved one is deployed, the endpoint comes up serving it: the image's serve, with its model
    status, deploying = api.call("POST", f"/models/{first}/deploy")
    assert (status, deploying["status"]) == (202, "Creating")
    served = endpoint_until(api, lambda s: s["status"] == "InService")
    assert served["version"] == first
    runtime = stack.client("sagemaker-runtime")
    image = next((stack.work / "dataset" / "images").glob("*.jpg")).read_bytes()  # the ingested photographs
    answer = runtime.invoke_endpoint(
        EndpointName=served["name"], ContentType="image/jpeg", Body=image, CustomAttributes="score_threshold=0"
    )
    detections = json.loads(answer["Body"].read())
    assert detections["model"]["data_width"] == 64
    assert detections["score_threshold"] == 0
    assert all(len(d["box"]) == 4 for d in detections["detections"])
    # a bad body is the container's 400, passed on as SageMaker's ModelError
    with pytest.raises(runtime.exceptions.ModelError, match=r"Received client error \(400\)"):
        runtime.invoke_endpoint(EndpointName=served["name"], ContentType="image/jpeg", Body=b"not an image")

    # When the second is approved and deployed, the endpoint is updated in place to serve it
    assert api.call("POST", f"/models/{second}/approve", {"comment": "better"})[0] == 200
    assert api.call("POST", f"/models/{second}/deploy")[0] == 202
    updated = endpoint_until(api, lambda s: s["status"] == "InService" and s["version"] == second)
    assert updated["name"] == served["name"]
    deployments = [e for e in stack.audit() if e["action"]["S"] == "deploy"]
    assert sorted(e["details"]["M"]["version"]["S"] for e in deployments) == sorted([str(first), str(second)])


def test_with_on_approval_an_approval_deploys_the_model_once(stack: LocalStack, api: Api) -> None:
    # Given the config's deployment.on_approval set, and the endpoint (if any) settled
    set_config(stack, tiny_config(stack).replace("on_approval: false", "on_approval: true"), epochs=1)
    try:
        version = registered(api)
        if api.call("GET", "/endpoint")[0] == 200:
            endpoint_until(api, lambda s: s["status"] in {"InService", "Failed"})

        # When a person approves it
        assert api.call("POST", f"/models/{version}/approve", {"comment": "ship it"})[0] == 200

        # Then the approval's event deploys it, once
        endpoint_until(api, lambda s: s["status"] == "InService" and s["version"] == version)
        by_event = [e for e in stack.audit() if e["action"]["S"] == "deploy" and e["source"]["S"] == "event"]
        assert [e["details"]["M"]["version"]["S"] for e in by_event] == [str(version)]
    finally:
        set_config(stack, tiny_config(stack).replace("on_approval: true", "on_approval: false"), epochs=1)


def test_an_approval_made_in_sagemaker_directly_is_recorded_and_announced_as_outside(
    stack: LocalStack, api: Api
) -> None:
    # Given a registered model
    version = registered(api)
    arn = api.call("GET", f"/models/{version}")[1]["arn"]

    # When someone approves it in SageMaker directly (as the console or the CLI does), imitating the control plane
    stack.client("sagemaker").update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="Approved by alice via api: fine"
    )

    # Then the model's decisions show it, made outside the control plane, by the caller SageMaker names
    deadline = time.monotonic() + 30
    while not (found := api.call("GET", f"/models/{version}")[1]["decisions"]):
        assert time.monotonic() < deadline, "the outside approval was not recorded"
        time.sleep(0.2)
    [decision] = found
    assert (decision["decision"], decision["source"]) == ("approve", "outside")
    assert decision["actor"].startswith("arn:aws:iam::123456789012:user/")
    # And one Slack message names it
    announced = f"{stack.group} v{version} was Approved outside the control plane"
    slack_post(stack, announced)
    assert len([p for p in stack.slack.posts("/api/chat.postMessage") if announced in p.body.get("text", "")]) == 1

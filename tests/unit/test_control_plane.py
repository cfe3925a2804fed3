"""The control plane's use cases over in-memory adapters: no AWS, no network."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import Clock, SignatureVerifier

from control_plane import (
    approval_request,
    endpoints,
    history,
    notifications,
    registry,
    runs,
    schedule,
    slack_approvals,
)
from control_plane.costs import PriceTable
from control_plane.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized, UploadFailed
from control_plane.models import AuditEntry, DatasetRef, DatasetSummary, Decision, DecisionResult, StartRunRequest
from control_plane.rest import describe_validation, source_of
from control_plane.settings import ApiEnv, MissingEnvironment, load_env
from pipeline_def.config import DeploymentSettings
from tests.unit.fakes import CONFIG, FakeAudit, FakeListing, FakePipelines, FakePresigner, FakeRegistry
from tests.unit.test_data_changes import evaluated

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


# ---------- overrides ----------


def test_overrides_become_sagemaker_strings() -> None:
    values = runs.check_overrides(
        runs_declared(),
        {"NumEpochs": 5, "LearningRate": 1, "Backbone": "darknet53", "TrainingInstanceType": "ml.m5.xlarge"},
    )

    assert values == {
        "NumEpochs": "5",
        "LearningRate": "1.0",
        "Backbone": "darknet53",
        "TrainingInstanceType": "ml.m5.xlarge",
    }


def runs_declared() -> list[dict[str, Any]]:
    return FakePipelines().declared_parameters()


def test_every_bad_override_is_named_at_once() -> None:
    with pytest.raises(InvalidRequest) as raised:
        runs.check_overrides(
            runs_declared(),
            {
                "NumEpochs": 2.5,
                "LearningRate": float("nan"),
                "Backbone": "resnet",
                "Colour": "red",
                "TrainingInstanceType": 3,
            },
        )

    message = raised.value.message
    for expected in (
        "parameters.NumEpochs: expected Integer, got float 2.5",
        "parameters.LearningRate: expected Float",
        "parameters.Backbone: 'resnet' is not one of mobilenet0.25, darknet53",
        "parameters.Colour: unknown parameter",
        "parameters.TrainingInstanceType: expected String, got int 3",
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ModelApprovalStatus": "Approved"}, "parameters.ModelApprovalStatus: not a run parameter: every model is "
         "registered PendingManualApproval and reaches Approved only through a recorded decision"),
        ({"InputDataUri": "s3://mine/easy"}, "parameters.InputDataUri: not a run parameter: a run trains and is judged "
         "on the stack's feature group"),
        ({"MapThreshold": 0}, "parameters.MapThreshold: 0.0 is below the config's floor 0.3; a run may raise the bar, "
         "never lower it"),
        ({"MapThreshold": 0.29}, "parameters.MapThreshold: 0.29 is below the config's floor 0.3"),
    ],
)  # fmt: skip
def test_no_override_weakens_the_gate(overrides: dict[str, Any], expected: str) -> None:
    # Given the measured bypass (ModelApprovalStatus Approved, MapThreshold 0), When started, Then a 400 says why
    with pytest.raises(InvalidRequest) as raised:
        runs.check_overrides(runs_declared(), overrides)
    assert expected in raised.value.message


def test_a_run_may_raise_the_bar() -> None:
    assert runs.check_overrides(runs_declared(), {"MapThreshold": 0.3}) == {"MapThreshold": "0.3"}
    assert runs.check_overrides(runs_declared(), {"MapThreshold": 0.9}) == {"MapThreshold": "0.9"}


def test_a_boolean_is_not_a_number() -> None:
    with pytest.raises(InvalidRequest, match="NumEpochs: expected Integer, got bool True"):
        runs.check_overrides(runs_declared(), {"NumEpochs": True})


# ---------- start ----------


def test_the_idempotency_key_gives_one_token_per_caller() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    request = StartRunRequest(parameters={"NumEpochs": 3})

    for caller in ("alice", "alice", "bob"):
        runs.start_run(runs.StartCommand(caller=caller, idempotency_key="k1", request=request), pipelines, audit)

    tokens = [s["token"] for s in pipelines.started]
    assert tokens[0] == tokens[1] != tokens[2]
    assert all(32 <= len(t) <= 128 for t in tokens)
    assert "(started by alice)" in pipelines.started[0]["description"]
    assert [e.actor for e in audit.entries] == ["alice", "alice", "bob"]


def test_without_a_key_every_start_is_new() -> None:
    pipelines = FakePipelines()
    command = runs.StartCommand(caller="alice", request=StartRunRequest())

    runs.start_run(command, pipelines, FakeAudit())
    runs.start_run(command, pipelines, FakeAudit())

    assert pipelines.started[0]["token"] != pipelines.started[1]["token"]


def test_bad_overrides_start_nothing_and_audit_nothing() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    command = runs.StartCommand(caller="alice", request=StartRunRequest(parameters={"Nope": 1}))

    with pytest.raises(InvalidRequest):
        runs.start_run(command, pipelines, audit)

    assert pipelines.started == []
    assert audit.entries == []


# ---------- list ----------


def test_filtered_listing_crosses_service_pages_without_losing_or_repeating_runs() -> None:
    # Given eleven runs, every third one failed, served three per service page
    pipelines = FakePipelines()
    for i in range(11):
        pipelines.add(f"r{i:011d}", "Failed" if i % 3 == 0 else "Succeeded", minutes_ago=11 - i)

    seen: list[str] = []
    token = None
    while True:
        page = runs.list_runs(pipelines, "Succeeded", next_token=token, limit=2)
        seen += [r.run_id for r in page.runs]
        token = page.next_token
        if token is None:
            break

    expected = [
        e["PipelineExecutionArn"].rsplit("/", 1)[-1]
        for e in pipelines.executions
        if e["PipelineExecutionStatus"] == "Succeeded"
    ]
    assert seen == expected


def test_a_forged_cursor_is_a_400() -> None:
    for cursor in ("not base64 !", "W10=", "WyJ4IiwgLTFd", "W251bGwsIHRydWVd"):  # [], ["x", -1], [null, true]
        with pytest.raises(InvalidRequest, match="next_token"):
            runs.list_runs(FakePipelines(), None, next_token=cursor, limit=5)


# ---------- stop / retry ----------


@pytest.mark.parametrize(
    ("status", "action", "allowed"),
    [
        ("Executing", "stop", True),
        ("Succeeded", "stop", False),
        ("Stopping", "stop", False),
        ("Failed", "retry", True),
        ("Stopped", "retry", True),
        ("Executing", "retry", False),
        ("Succeeded", "retry", False),
    ],
)
def test_stop_and_retry_only_from_their_states(status: str, action: str, allowed: bool) -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    pipelines.add("abcdef123456", status)
    operation = runs.stop_run if action == "stop" else runs.retry_run

    if allowed:
        operation("abcdef123456", "alice", pipelines=pipelines, audit=audit)
        assert [c[0] for c in pipelines.calls] == [action]
        assert [e.action for e in audit.entries] == [action]
    else:
        with pytest.raises(Conflict, match=status):
            operation("abcdef123456", "alice", pipelines=pipelines, audit=audit)
        assert pipelines.calls == []
        assert audit.entries == []


def test_unknown_run_is_not_found() -> None:
    with pytest.raises(NotFound):
        runs.stop_run("abcdef123456", "alice", pipelines=FakePipelines(), audit=FakeAudit())


def test_logs_link_points_at_the_jobs_log_streams() -> None:
    url = runs.logs_url("eu-west-1", "arn:aws:sagemaker:eu-west-1:123456789012:training-job/pipelines-abc-Train-x")

    assert url is not None
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:")
    assert "$252Faws$252Fsagemaker$252FTrainingJobs" in url
    assert url.endswith("pipelines-abc-Train-x")
    assert runs.logs_url("eu-west-1", "arn:aws:sagemaker:eu-west-1:123456789012:model/x") is None


# ---------- decisions ----------


def decide(reg: FakeRegistry, audit: FakeAudit, decision: Decision) -> Any:
    command = registry.DecideCommand(version=1, decision=decision, actor="alice", comment="fine", source="api")
    return registry.decide(command, reg, audit)


def test_approve_is_recorded_in_sagemaker_and_the_audit() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1)

    result = decide(reg, audit, "approve")

    assert result.changed is True
    [(_arn, status, description)] = reg.updates
    assert (status, description) == ("Approved", "Approved by alice via api: fine")
    assert audit.entries[0].details["from"] == "PendingManualApproval"


def test_approving_an_approved_model_is_a_no_op() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1, status="Approved")

    result = decide(reg, audit, "approve")

    assert result.changed is False
    assert reg.updates == []
    assert audit.entries == []


def test_rejecting_an_approved_model_is_allowed_and_audited() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1, status="Approved")

    result = decide(reg, audit, "reject")

    assert (result.changed, result.approval_status) == (True, "Rejected")
    assert audit.entries[0].details == {
        "from": "Approved",
        "to": "Rejected",
        "comment": "fine",
        "arn": reg.packages[1]["ModelPackageArn"],
    }


def test_a_long_comment_is_cut_to_what_sagemaker_takes() -> None:
    reg = FakeRegistry()
    reg.add(1)
    command = registry.DecideCommand(version=1, decision="approve", actor="a", comment="x" * 2000, source="api")

    registry.decide(command, reg, FakeAudit())

    assert len(reg.updates[0][2]) == 1024


def test_listing_models_reads_map_from_each_package() -> None:
    reg = FakeRegistry()
    reg.add(1, test_map="0.41")
    reg.add(2, test_map="not a number")

    page = registry.list_models(reg, None, next_token=None, limit=10)

    assert [(m.version, m.map) for m in page.models] == [(2, None), (1, 0.41)]


# ---------- Slack ----------


def signed(body: str, at: int | None = None, secret: str = SECRET) -> tuple[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    return timestamp, str(SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body))


class FrozenClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def slack_body(**overrides: Any) -> str:
    payload = {
        "user": {"id": "U012AB3CD", "username": "alice"},
        "trigger_id": "t1",
        "response_url": "https://hooks.slack.com/actions/x",
        "channel": {"id": "C0SCRATCHES", "name": "scratch-detector"},
        "container": {"type": "message", "message_ts": "1795000000.000100", "channel_id": "C0SCRATCHES"},
        "actions": [
            {
                "action_id": "approve",
                "value": json.dumps({"group": "scratch-detector", "version": 1}),
                "action_ts": "1.0",
            }
        ],
        **overrides,
    }
    return urlencode({"payload": json.dumps(payload)})


def test_signature_window_is_five_minutes_either_way() -> None:
    body = slack_body()
    timestamp, signature = signed(body, at=1_795_000_000)

    slack_approvals.verify(body, timestamp, signature, signing_secret=SECRET, clock=FrozenClock(1_795_000_300))
    for now in (1_795_000_301, 1_794_999_699):
        with pytest.raises(Unauthorized):
            slack_approvals.verify(body, timestamp, signature, signing_secret=SECRET, clock=FrozenClock(now))


@pytest.mark.parametrize(("timestamp", "signature"), [(None, "v0=x"), ("1795000000", None), ("soon", "v0=x")])
def test_missing_or_odd_headers_are_unauthorised(timestamp: str | None, signature: str | None) -> None:
    with pytest.raises(Unauthorized):
        slack_approvals.verify(
            "payload=x", timestamp, signature, signing_secret=SECRET, clock=FrozenClock(1_795_000_000)
        )


@pytest.mark.parametrize(
    "body",
    [
        "payload=not-json",
        "nothing=here",
        slack_body(actions=[]),
        slack_body(user={}),
        slack_body(actions=[{"action_id": "delete", "value": "{}", "action_ts": "1"}]),
        slack_body(actions=[{"action_id": "approve", "value": '{"group": "g"}', "action_ts": "1"}]),
    ],
)
def test_payloads_we_did_not_send_are_invalid(body: str) -> None:
    with pytest.raises(InvalidRequest):
        slack_approvals.parse(body)


def test_allow_list_and_group_and_response_url_are_checked() -> None:
    action = slack_approvals.parse(slack_body())
    prefix = "https://hooks.slack.com/"

    slack_approvals.authorise(action, ["U012AB3CD"], group="scratch-detector", response_url_prefix=prefix)
    with pytest.raises(Forbidden, match="empty"):
        slack_approvals.authorise(action, [], group="scratch-detector", response_url_prefix=prefix)
    with pytest.raises(Forbidden, match="U012AB3CD"):
        slack_approvals.authorise(action, ["U999"], group="scratch-detector", response_url_prefix=prefix)
    with pytest.raises(InvalidRequest, match="group"):
        slack_approvals.authorise(action, ["U012AB3CD"], group="other", response_url_prefix=prefix)
    with pytest.raises(InvalidRequest, match="response_url"):
        slack_approvals.authorise(
            action, ["U012AB3CD"], group="scratch-detector", response_url_prefix="https://elsewhere/"
        )


def test_a_click_decides_as_the_slack_user_and_knows_its_message() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1)
    action = slack_approvals.parse(slack_body())

    result = slack_approvals.act(action, reg, audit)

    assert (result.approval_status, result.changed) == ("Approved", True)
    assert len(reg.updates) == 1
    assert (audit.entries[0].source, audit.entries[0].actor) == ("slack", "slack:U012AB3CD (alice)")
    # the worker replies in the message's thread when the decision fails
    assert (action.channel_id, action.message_ts) == ("C0SCRATCHES", "1795000000.000100")


# ---------- schedule and notifications ----------


def test_the_schedule_token_depends_on_the_scheduled_time_only() -> None:
    pipelines = FakePipelines()
    tick = schedule.ScheduledTick(time=datetime(2026, 11, 30, 3, tzinfo=UTC))

    schedule.scheduled_start(tick, pipelines, FakeAudit(), skip_if_running=False, config=CONFIG, listing=FakeListing())
    schedule.scheduled_start(tick, pipelines, FakeAudit(), skip_if_running=False, config=CONFIG, listing=FakeListing())

    assert pipelines.started[0]["token"] == pipelines.started[1]["token"]
    assert pipelines.started[0]["display_name"] == "scheduled-20261130-0300"


def test_the_schedule_skips_an_executing_run_unless_told_not_to() -> None:
    pipelines = FakePipelines()
    pipelines.add("abcdef123456", "Executing")
    tick = schedule.ScheduledTick(time=datetime(2026, 11, 30, 3, tzinfo=UTC))

    skipped = schedule.scheduled_start(
        tick, pipelines, FakeAudit(), skip_if_running=True, config=CONFIG, listing=FakeListing()
    )
    forced = schedule.scheduled_start(
        tick, pipelines, FakeAudit(), skip_if_running=False, config=CONFIG, listing=FakeListing()
    )

    assert (skipped.started, forced.started) == (False, True)
    assert len(pipelines.started) == 1


def test_a_failed_run_message_names_the_first_failed_step() -> None:
    pipelines = FakePipelines(
        step_list=[
            {"StepName": "Preprocess", "StepStatus": "Succeeded"},
            {"StepName": "Evaluate", "StepStatus": "Failed", "FailureReason": "no test images"},
            {"StepName": "Register", "StepStatus": "Failed", "FailureReason": "later"},
        ]
    )
    notice = notifications.Notice(kind="run-failed", arn=pipelines.execution_arn("abcdef123456"), status="Failed")

    text, _ = notifications.message_for(notice, _sources(FakeRegistry(), pipelines), FakePoster())

    assert text == "Run abcdef123456 of scratch-detector failed at Evaluate: no test images"


EVALUATION_URI = "s3://bucket/pipeline/run/Evaluate/evaluation/evaluation.json"
PICTURE_URI = "s3://bucket/pipeline/run/Evaluate/evaluation/predictions.png"
REPORT: dict[str, Any] = {
    "metrics": {"map": {"value": 0.73}},
    "precision": 0.7,
    "recall": 0.66,
    "score_threshold": 0.18,
    "per_class": {"scratch": {"true_positives": 103, "false_positives": 44}},
    "counts": {"images": 72, "boxes": 155},
    "model": {"train_images": 336, "validation_images": 72, "training_seconds": 330.0, "best_epoch": 24,
              "epochs": 26, "best_val_map": 0.89},
    "champion": {"present": True, "version": "2", "map": 0.65, "precision": 0.6, "recall": 0.55},
    "comparison": {"map_difference": 0.08},
}  # fmt: skip


@dataclass
class FakePoster:
    uploads: list[tuple[str, bytes, str]] = field(default_factory=list)
    refuse: str | None = None

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> str:
        return "1795000000.000001"

    def upload(self, filename: str, content: bytes, title: str) -> str:
        if self.refuse:
            raise UploadFailed(self.refuse)
        self.uploads.append((filename, content, title))
        return "F0PICTURE"


def _sources(
    reg: FakeRegistry, pipelines: FakePipelines, objects: dict[str, Any] | None = None
) -> notifications.Sources:
    objects = {EVALUATION_URI: REPORT, PICTURE_URI: b"\x89PNG..."} if objects is None else objects

    def report(uri: str) -> dict[str, Any] | None:
        return objects.get(uri)

    def picture(uri: str) -> bytes | None:
        return objects.get(uri)

    return notifications.Sources(
        registry=reg, pipelines=pipelines, read_report=report, read_object=picture, api_url="https://api.example/dev"
    )


def _pending(reg: FakeRegistry) -> notifications.Notice:
    reg.add(3)
    reg.packages[3]["ModelMetrics"] = {"ModelQuality": {"Statistics": {"S3Uri": EVALUATION_URI}}}
    return notifications.Notice(kind="model-pending", arn=reg.packages[3]["ModelPackageArn"], status="Pending")


def test_an_approval_request_shows_the_evidence_beside_the_champion_and_the_picture() -> None:
    reg, poster = FakeRegistry(), FakePoster()

    text, blocks = notifications.message_for(_pending(reg), _sources(reg, FakePipelines()), poster)

    assert "test mAP@0.5 0.730 (threshold 0.3)" in text
    assert "0.730 against champion v2's 0.650 on the same images (+0.080)" in text
    # the champion's own precision and recall are named as its, not read as the new model's
    assert "(+0.080); the champion's precision 0.60, recall 0.55" in text
    shown = blocks[0]["text"]["text"]
    for expected in (
        "precision 0.70, recall 0.66 (103 of 155 scratches found, 44 false detections)",
        "*at score ≥ 0.180:*",
        "*images:* 336 train / 72 validation / 72 test",
        "*training:* 5.5 min, best epoch 24 of 26 (validation mAP 0.890)",
        "*run:* <https://api.example/dev/runs/abcdef123456|abcdef123456>",
        "the champion's precision 0.60, recall 0.55",
    ):
        assert expected in shown, expected
    # the picture: uploaded first, then shown in the message by its file id
    assert poster.uploads == [
        ("scratch-detector-v3-predictions.png", b"\x89PNG...", "scratch-detector v3: test predictions")
    ]
    assert blocks[1]["type"] == "image"
    assert blocks[1]["slack_file"] == {"id": "F0PICTURE"}
    assert [b["action_id"] for b in blocks[2]["elements"]] == ["approve", "reject"]
    assert blocks[2]["elements"][1]["confirm"]["title"]["text"] == "Reject this model?"


def test_an_approval_request_names_the_nms_threshold_beside_the_score_threshold() -> None:
    # Given an evaluation that names the NMS threshold baked into the model (REPORT, from before, names none)
    reg = FakeRegistry()
    objects = {EVALUATION_URI: {**REPORT, "nms_threshold": 0.4}, PICTURE_URI: b"\x89PNG..."}

    # When its approval request is written
    _, blocks = notifications.message_for(_pending(reg), _sources(reg, FakePipelines(), objects), FakePoster())

    # Then the line that names the score threshold names the NMS threshold too
    assert "*at score ≥ 0.180, NMS IoU 0.40:* precision 0.70" in blocks[0]["text"]["text"]


@pytest.mark.parametrize(
    ("objects", "refuse", "problem"),
    [
        ({EVALUATION_URI: REPORT}, None, "no predictions picture: the evaluation wrote none"),
        (None, "missing_scope", "the predictions picture was not uploaded: missing_scope"),
    ],
)
def test_an_approval_request_without_its_picture_still_goes_and_says_why(
    objects: dict[str, Any] | None, refuse: str | None, problem: str
) -> None:
    reg = FakeRegistry()

    _, blocks = notifications.message_for(
        _pending(reg), _sources(reg, FakePipelines(), objects), FakePoster(refuse=refuse)
    )

    assert [b["type"] for b in blocks] == ["section", "context", "actions"]
    assert blocks[1]["elements"][0]["text"] == problem


def test_an_approval_request_shows_the_runs_estimated_cost() -> None:
    # Given a registered model whose run's Train (spot, 2 x 720 s of ml.c5.4xlarge) and Evaluate (600 s of
    # ml.m5.xlarge) jobs ended, and a price table of 0.8 and 0.2 USD/h
    reg, pipelines = FakeRegistry(), FakePipelines()
    pipelines.step_list = [
        {"StepName": "Train", "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:::training-job/pipelines-a-T"}}},
        {"StepName": "Evaluate", "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:::processing-job/p-E"}}},
    ]
    prices = PriceTable(region="us-east-1", as_of=date(2026, 12, 4), currency="USD",
                        per_hour={"ml.c5.4xlarge": 0.8, "ml.m5.xlarge": 0.2})  # fmt: skip
    notice = _pending(reg)

    # When its approval request is written, with the price table and without one
    _, blocks = notifications.message_for(
        notice, replace(_sources(reg, pipelines), prices=lambda: prices), FakePoster()
    )
    _, plain = notifications.message_for(notice, _sources(reg, pipelines), FakePoster())

    # Then it shows 720 * 2 * 0.8 / 3600 + 600 * 0.2 / 3600 = 0.353 USD, as an upper bound; without a table, nothing
    assert (
        "*estimated cost:* about 0.35 USD (on-demand list prices, us-east-1, 2026-12-04; spot training priced on "
        "demand, so at most this)"
    ) in blocks[0]["text"]["text"]
    assert "estimated cost" not in plain[0]["text"]["text"]


def test_an_approval_request_names_who_started_the_run() -> None:
    # Given a run started by the CI role (its session name is whatever the workflow chose, so it is shown escaped)
    reg, audit = FakeRegistry(), FakeAudit()
    starter = "arn:aws:sts::123456789012:assumed-role/ci/<!channel>"
    audit.record(
        AuditEntry(subject="run#abcdef123456", action="start", actor=starter, source="ci", at=datetime.now(UTC))
    )
    sources = replace(_sources(reg, FakePipelines()), audit=audit)

    _, blocks = notifications.message_for(_pending(reg), sources, FakePoster())

    # Then the approver sees who started it (four eyes: through the API that identity may not approve it)
    shown = blocks[0]["text"]["text"]
    assert "*started by:* `arn:aws:sts::123456789012:assumed-role/ci/&lt;!channel&gt;` (ci)" in shown


def test_an_approval_request_warns_when_the_run_trained_without_records_the_offline_store_lacked() -> None:
    # Given a run whose Preprocess found 3 approved records ingested but not in the offline store yet
    reg = FakeRegistry()
    dataset = "s3://bucket/pipeline/run/Preprocess/report/dataset_report.json"
    missed = {"not_in_offline_store": {"ingest_log": "s3://bucket/ingest-log/g/", "approved_records": 3}}
    complete = {"not_in_offline_store": {"ingest_log": "s3://bucket/ingest-log/g/", "approved_records": 0}}

    # When its approval request is written
    _, blocks = notifications.message_for(
        _pending(reg), _sources(reg, FakePipelines(), {EVALUATION_URI: REPORT, dataset: missed}), FakePoster()
    )

    # Then the approver reads that the model learnt without them; a run that missed nothing says nothing of it
    assert (
        "*data:* trained without 3 approved records that were ingested but not in the offline store yet"
        in (blocks[0]["text"]["text"])
    )
    for objects in ({EVALUATION_URI: REPORT, dataset: complete}, {EVALUATION_URI: REPORT}):
        _, blocks = notifications.message_for(_pending(reg), _sources(reg, FakePipelines(), objects), FakePoster())
        assert "*data:*" not in blocks[0]["text"]["text"]


def test_a_first_model_says_there_is_no_champion_and_why() -> None:
    reg = FakeRegistry()
    report = {**REPORT, "champion": {"present": False, "version": None, "reason": "no approved model in the group"}}

    text, _ = notifications.message_for(
        _pending(reg), _sources(reg, FakePipelines(), {EVALUATION_URI: report}), FakePoster()
    )

    assert "no champion to compare with: no approved model in the group" in text


def test_an_approval_request_shows_what_changed_in_the_data_since_the_champion() -> None:
    # Given a model whose run has one train image added and one test image relabelled since champion v3
    reg = FakeRegistry()
    report = {**REPORT, **evaluated()}
    report["data_changes"]["examples"]["relabelled"] = ["s3://images/<!here>.jpg"]

    # When its approval request is written
    _, blocks = notifications.message_for(
        _pending(reg), _sources(reg, FakePipelines(), {EVALUATION_URI: report}), FakePoster()
    )

    # Then the approver reads the change in one line, with an image of each kind (escaped: names are data)
    lines = blocks[0]["text"]["text"].split("\n")
    assert "Data since v3: +1 image, 1 relabelled, 0 removed (train +1, test 1 relabelled); 41 images (v3: 40)" in lines
    assert "e.g. added `s3://images/new.jpg`, relabelled `s3://images/&lt;!here&gt;.jpg`" in lines


def test_an_approval_request_names_the_data_the_model_learned_from_and_an_older_evaluation_says_nothing() -> None:
    reg = FakeRegistry()
    dataset = {"as_of": "2026-12-05T02:00:00.000Z", "manifest_sha256": "9f86d081884c7d659a2feaa0c55ad015", "images": {}}
    for report, expected in (
        ({**REPORT, "dataset": dataset}, ["*data:* as of 2026-12-05T02:00:00.000Z, manifest sha256 `9f86d081884c`"]),
        (REPORT, []),
    ):
        _, blocks = notifications.message_for(
            _pending(reg), _sources(reg, FakePipelines(), {EVALUATION_URI: report}), FakePoster()
        )
        lines = blocks[0]["text"]["text"].split("\n")
        assert [line for line in lines if line.startswith("*data:* as of")] == expected


def test_an_approval_request_says_why_the_data_was_not_compared_and_an_older_evaluation_says_nothing() -> None:
    reg = FakeRegistry()
    absent = {**REPORT, "data_changes": {"champion_version": 2, "absent": "champion v2 names no data manifest"}}
    said = "Data since v2: not compared (champion v2 names no data manifest)"
    for report, expected in ((absent, said), (REPORT, None)):
        _, blocks = notifications.message_for(
            _pending(reg), _sources(reg, FakePipelines(), {EVALUATION_URI: report}), FakePoster()
        )
        found = [line for line in blocks[0]["text"]["text"].split("\n") if line.startswith("Data since")]
        assert found == ([expected] if expected else [])


def test_after_a_decision_the_request_keeps_its_evidence_and_loses_its_buttons() -> None:
    reg = FakeRegistry()
    _, blocks = notifications.message_for(_pending(reg), _sources(reg, FakePipelines()), FakePoster())
    result = DecisionResult(version=3, approval_status="Approved", changed=True)

    text, updated = approval_request.decided("scratch-detector", result, "U1", original=blocks)

    assert text == "scratch-detector v3 :white_check_mark: approved by <@U1>"
    assert updated[:2] == blocks[:2]  # the evidence and the picture
    assert [b["type"] for b in updated] == ["section", "image", "section"]
    assert updated[-1]["text"]["text"] == text


# ---------- edges ----------


def test_missing_environment_is_named_at_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("PIPELINE_NAME", "MODEL_PACKAGE_GROUP", "CONFIG_PARAMETER", "AUDIT_TABLE", "IDEMPOTENCY_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIPELINE_NAME", "p")

    missing = "MODEL_PACKAGE_GROUP, ENDPOINT_NAME, MODEL_ROLE_ARN, CONFIG_PARAMETER, AUDIT_TABLE, IDEMPOTENCY_TABLE"
    with pytest.raises(MissingEnvironment, match=missing):
        load_env(ApiEnv)


def test_validation_errors_read_as_field_paths() -> None:
    message = describe_validation(
        [
            {"type": "json_invalid", "loc": ("body", 12)},
            {"type": "extra_forbidden", "loc": ("body", "colour")},
            {"type": "int_parsing", "loc": ("query", "limit"), "msg": "Input should be a valid integer"},
        ]
    )

    assert message == "body: not valid JSON; body.colour: unknown field; query.limit: Input should be a valid integer"


class _RunningPipeline:
    """SageMaker with one pipeline and two executions, one of them still executing; a stopped run shows Stopping
    for `stopping_lists` more listings, then Stopped."""

    def __init__(self, stopping_lists: int = 1) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stopping_lists = stopping_lists
        self.summaries = [
            {"PipelineExecutionArn": "arn:p/execution/running00001", "PipelineExecutionStatus": "Executing"},
            {"PipelineExecutionArn": "arn:p/execution/finished0001", "PipelineExecutionStatus": "Succeeded"},
        ]

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_pipeline_executions"
        outer = self

        class Pages:
            def paginate(self, **request: Any) -> list[dict[str, Any]]:
                outer.calls.append((operation, request))
                listed = [{"PipelineExecutionSummaries": [dict(s) for s in outer.summaries]}]
                outer._settle()
                return listed

        return Pages()

    def _settle(self) -> None:
        stopping = [s for s in self.summaries if s["PipelineExecutionStatus"] == "Stopping"]
        self.stopping_lists -= 1 if stopping else 0
        if stopping and self.stopping_lists <= 0:
            for summary in stopping:
                summary["PipelineExecutionStatus"] = "Stopped"

    def stop_pipeline_execution(self, **request: Any) -> None:
        self.calls.append(("stop_pipeline_execution", request))
        for summary in self.summaries:
            if summary["PipelineExecutionArn"] == request["PipelineExecutionArn"]:
                summary["PipelineExecutionStatus"] = "Stopping"

    def delete_pipeline(self, **request: Any) -> None:
        assert all(s["PipelineExecutionStatus"] not in {"Executing", "Stopping"} for s in self.summaries)
        self.calls.append(("delete_pipeline", request))


def test_deleting_the_pipeline_first_stops_its_running_executions_and_waits_until_they_have_stopped() -> None:
    from control_plane.aws.sagemaker import PipelineDeployer

    sagemaker = _RunningPipeline(stopping_lists=2)

    assert PipelineDeployer(sagemaker).delete("scratch-detector", wait_seconds=10, poll_seconds=0) is True

    names = [name for name, _ in sagemaker.calls]
    assert names == [
        "list_pipeline_executions",
        "stop_pipeline_execution",
        *["list_pipeline_executions"] * 3,  # Stopping, Stopping, then Stopped
        "delete_pipeline",
    ]
    assert sagemaker.calls[1][1]["PipelineExecutionArn"] == "arn:p/execution/running00001"


def test_a_run_still_stopping_when_the_wait_is_over_is_named_and_the_pipeline_kept() -> None:
    from control_plane.aws.sagemaker import PipelineDeployer
    from control_plane.errors import Conflict

    sagemaker = _RunningPipeline(stopping_lists=1000)

    with pytest.raises(Conflict, match=r"running00001.*delete again once they show Stopped"):
        PipelineDeployer(sagemaker).delete("scratch-detector", wait_seconds=0, poll_seconds=0)
    assert "delete_pipeline" not in [name for name, _ in sagemaker.calls]


# ---------- champion, history and links ----------


def test_a_run_names_no_champion_evaluate_reads_it_from_the_registry() -> None:
    pipelines, reg, audit = FakePipelines(), FakeRegistry(), FakeAudit()
    reg.add(1, "Approved")
    command = runs.StartCommand(caller="alice", request=StartRunRequest(parameters={"NumEpochs": 3}))

    started = runs.start_run(command, pipelines, audit)

    assert started.parameters == {"NumEpochs": "3", "DataAsOf": started.parameters["DataAsOf"]}
    assert pipelines.started[0]["parameters"] == started.parameters


def test_the_champion_is_not_a_callers_to_choose() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    request = StartRunRequest(parameters={"ChampionModelUri": "s3://mine/weak.tar.gz", "ChampionVersion": "1"})

    with pytest.raises(InvalidRequest) as raised:
        runs.start_run(runs.StartCommand(caller="alice", request=request), pipelines, audit)

    for name in ("ChampionModelUri", "ChampionVersion"):
        assert f"parameters.{name}: not a run parameter: Evaluate reads the champion from the registry" in (
            raised.value.message
        )
    assert (pipelines.started, audit.entries) == ([], [])


def test_the_schedule_starts_its_run_with_the_configs_values() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()

    schedule.scheduled_start(
        schedule.ScheduledTick(time=datetime(2026, 12, 1, tzinfo=UTC)),
        pipelines,
        audit,
        skip_if_running=False,
        config=CONFIG,
        listing=FakeListing(),
    )

    # the config's values, on the data as of the scheduled time
    assert pipelines.started[0]["parameters"] == {"DataAsOf": "2026-12-01T00:00:00.000Z"}
    assert (audit.entries[0].source, audit.entries[0].actor) == ("schedule", "schedule")


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("arn:aws:sts::123456789012:assumed-role/deploy-dev-DeployRole-AbC/GitHubActions", "ci"),
        ("arn:aws:sts::123456789012:assumed-role/SomeoneElse/GitHubActions", "api"),
        ("arn:aws:sts::999999999999:assumed-role/deploy-dev-DeployRole-AbC/GitHubActions", "api"),  # another account
        ("arn:aws:iam::123456789012:user/alice", "api"),
        ("AIDAEXAMPLE", "api"),
    ],
)
def test_a_run_started_by_the_deploy_workflows_role_is_from_ci(caller: str, expected: str) -> None:
    ci_role = "arn:aws:iam::123456789012:role/github/deploy-dev-DeployRole-AbC"  # a path is not in the session ARN
    assert source_of(caller, ci_role) == expected
    assert source_of(caller, None) == "api"


def _readers(reg: FakeRegistry, audit: FakeAudit, presigner: FakePresigner) -> runs.RunReaders:
    return runs.RunReaders(
        registry=reg,
        audit=audit,
        read_report=lambda uri: {"metrics": {"map": {"value": 0.7}}},
        presigner=presigner,
        region="us-east-1",
    )


def test_a_run_says_who_started_it_and_links_to_what_exists_of_its_results() -> None:
    pipelines, reg, audit = FakePipelines(), FakeRegistry(), FakeAudit()
    command = runs.StartCommand(caller="arn:aws:sts::1:assumed-role/ci/GitHubActions", request=StartRunRequest(),
                                source="ci")  # fmt: skip
    run_id = runs.start_run(command, pipelines, audit).run_id
    runs.stop_run(run_id, "bob", pipelines=pipelines, audit=audit)
    job = "arn:aws:sagemaker:us-east-1:1:training-job/pipelines-abc-Train"
    pipelines.step_list = [
        {"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {"TrainingJob": {"Arn": job}}},
        {"StepName": "Evaluate", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:1:processing-job/pipelines-abc-Eval"}}},
    ]  # fmt: skip
    # the model and the report exist; the pictures were not written
    presigner = FakePresigner(
        {"s3://bucket/pipelines-abc-Train/output/model.tar.gz", "s3://bucket/evaluation/evaluation.json"}
    )

    detail = runs.get_run(run_id, pipelines, _readers(reg, audit, presigner))

    assert detail.started_by is not None
    assert (detail.started_by.actor, detail.started_by.source) == (command.caller, "ci")  # the start, not the stop
    assert detail.artefacts is not None
    assert detail.artefacts.model_archive == "https://signed/bucket/pipelines-abc-Train/output/model.tar.gz?expires=900"
    assert detail.artefacts.evaluation_json == "https://signed/bucket/evaluation/evaluation.json?expires=900"
    assert (detail.artefacts.predictions_png, detail.artefacts.training_curves_png) == (None, None)
    assert detail.training_metrics == {"train:map": 0.7}


def test_a_run_shows_what_preprocess_made_of_the_offline_store_and_what_it_did_not_hold_yet() -> None:
    # Given a run whose Preprocess found 5 images, dropped 1 record, and 3 approved records not in the store yet
    pipelines, reg, audit = FakePipelines(), FakeRegistry(), FakeAudit()
    run_id = runs.start_run(runs.StartCommand(caller="bob", request=StartRunRequest()), pipelines, audit).run_id
    job = "arn:aws:sagemaker:us-east-1:1:processing-job/pipelines-abc-Preprocess"
    pipelines.step_list = [
        {"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}}
    ]
    report = {
        "images": 5,
        "splits": {"train": {"images": 3, "boxes": 4}, "validation": {"images": 1}, "test": {"images": 1}},
        "dropped": [{"source_ref": "s3://b/x.jpg", "reason": "status REJECTED"}],
        "not_in_offline_store": {"ingest_log": "s3://b/ingest-log/g/", "approved_records": 3, "source_refs": []},
        "as_of": "2026-12-05T02:00:00.000Z",
        "written_after_as_of": 2,
        "manifest": {"file": "manifest.jsonl", "sha256": "ab" * 32, "images": 5},
    }
    reports: dict[str, dict[str, Any]] = {"s3://bucket/evaluation/dataset_report.json": report}
    readers = dataclasses.replace(_readers(reg, audit, FakePresigner(set())), read_report=lambda uri: reports.get(uri))

    # When it is read
    detail = runs.get_run(run_id, pipelines, readers)

    # Then its dataset figures say what it trained on and what it missed
    assert detail.dataset is not None
    assert detail.dataset.model_dump() == {
        "images": 5,
        "splits": {"train": 3, "validation": 1, "test": 1},
        "dropped": 1,
        "not_in_offline_store": 3,
        "as_of": "2026-12-05T02:00:00.000Z",
        "manifest_sha256": "ab" * 32,
        "written_after_as_of": 2,
    }
    # and a report without an ingest log to compare with says nothing about it
    assert runs.dataset_summary({"images": 2, "splits": {}, "dropped": []}) == DatasetSummary(images=2)


def test_a_run_shows_what_changed_in_the_data_since_the_champion() -> None:
    # Given a run whose Evaluate compared its data with champion v3's
    pipelines, reg, audit = FakePipelines(), FakeRegistry(), FakeAudit()
    run_id = runs.start_run(runs.StartCommand(caller="bob", request=StartRunRequest()), pipelines, audit).run_id
    pipelines.step_list = [
        {"StepName": "Evaluate", "StepStatus": "Succeeded",
         "Metadata": {"ProcessingJob": {"Arn": "arn:aws:sagemaker:us-east-1:1:processing-job/pipelines-abc-Eval"}}},
    ]  # fmt: skip
    reports = {"s3://bucket/evaluation/evaluation.json": evaluated()}
    readers = dataclasses.replace(_readers(reg, audit, FakePresigner(set())), read_report=lambda uri: reports.get(uri))

    # When it is read
    detail = runs.get_run(run_id, pipelines, readers)

    # Then it has the figures and the line the approval request shows
    assert detail.data_changes is not None
    assert detail.data_changes.totals is not None
    assert (detail.data_changes.totals.added, detail.data_changes.totals.relabelled) == (1, 1)
    assert detail.data_changes.champion_version == 3
    assert detail.data_changes.summary.startswith("Data since v3: +1 image, 1 relabelled, 0 removed")
    # and a run evaluated before data was compared has none
    older = dataclasses.replace(readers, read_report=lambda uri: {"metrics": {"map": {"value": 0.7}}})
    assert runs.get_run(run_id, pipelines, older).data_changes is None


def test_a_run_without_results_has_no_links_and_one_started_elsewhere_no_origin() -> None:
    pipelines = FakePipelines()
    pipelines.add("abcdef123456", "Executing")

    detail = runs.get_run("abcdef123456", pipelines, _readers(FakeRegistry(), FakeAudit(), FakePresigner()))

    assert (detail.started_by, detail.artefacts) == (None, None)


def test_a_model_shows_its_decisions_its_run_and_links_to_its_results() -> None:
    pipelines, reg, audit = FakePipelines(), FakeRegistry(), FakeAudit()
    run_id = runs.start_run(runs.StartCommand(caller="alice", request=StartRunRequest()), pipelines, audit).run_id
    reg.add(3)
    reg.packages[3]["CustomerMetadataProperties"]["PipelineExecutionArn"] = pipelines.execution_arn(run_id)
    reg.packages[3]["ModelMetrics"] = {
        "ModelQuality": {"Statistics": {"S3Uri": "s3://bucket/run/Evaluate/evaluation/evaluation.json"}}
    }
    for command in (
        registry.DecideCommand(version=3, decision="approve", actor="slack:U1 (carol)", comment="approve it",
                               source="slack"),
        registry.DecideCommand(version=3, decision="reject", actor="bob", comment="reject it", source="api"),
    ):  # fmt: skip
        registry.decide(command, reg, audit)
        time.sleep(0.002)  # two entries, in order
    presigner = FakePresigner({"s3://bucket/run/Evaluate/evaluation/predictions.png", "s3://bucket/v3/model.tar.gz"})

    model = registry.get_model(reg, 3, audit=audit, pipelines=pipelines, presigner=presigner)

    assert [(d.decision, d.actor, d.source, d.comment, d.previous_status) for d in model.decisions] == [
        ("approve", "slack:U1 (carol)", "slack", "approve it", "PendingManualApproval"),
        ("reject", "bob", "api", "reject it", "Approved"),
    ]
    assert (model.run_id, model.run_status) == (run_id, "Executing")
    assert model.started_by is not None
    assert model.started_by.actor == "alice"
    assert model.artefacts is not None
    assert (
        model.artefacts.predictions_png == "https://signed/bucket/run/Evaluate/evaluation/predictions.png?expires=900"
    )
    assert model.artefacts.model_archive == "https://signed/bucket/v3/model.tar.gz?expires=900"
    assert model.artefacts.evaluation_json is None


def test_the_audit_trail_pages_newest_first() -> None:
    audit = FakeAudit()
    for index in range(5):
        audit.record(AuditEntry(subject="run#abcdef123456", action=f"a{index}", actor="x", source="api",
                                at=datetime(2026, 12, 1, 0, index, tzinfo=UTC)))  # fmt: skip
    audit.record(AuditEntry(subject="run#other0000000", action="other", actor="x", source="api", at=datetime.now(UTC)))

    first = history.audit_page(audit, "run#abcdef123456", next_token=None, limit=3)
    second = history.audit_page(audit, "run#abcdef123456", next_token=first.next_token, limit=3)

    assert [e.action for e in first.entries + second.entries] == ["a4", "a3", "a2", "a1", "a0"]
    assert second.next_token is None


# ---------- separation of duties ----------

RUNNER, APPROVER = "arn:aws:iam::123456789012:user/runner", "arn:aws:iam::123456789012:user/approver"


def started_run(audit: FakeAudit, actor: str = RUNNER, run_id: str = "abcdef123456") -> None:
    audit.record(AuditEntry(subject=f"run#{run_id}", action="start", actor=actor, source="api", at=datetime.now(UTC)))


def api_decision(
    decision: Decision, actor: str, *, four_eyes: bool = True, source: Literal["api", "ci"] = "api"
) -> registry.DecideCommand:
    return registry.DecideCommand(
        version=1, decision=decision, actor=actor, comment="ok", source=source, four_eyes=four_eyes
    )


def test_who_started_the_run_may_not_approve_its_model_through_the_api() -> None:
    # Given a model of a run the runner started
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1)
    started_run(audit)

    # When the runner approves it, Then a 409 names the rule and the starter, and nothing changes
    with pytest.raises(Conflict) as refused:
        registry.decide(api_decision("approve", RUNNER), reg, audit)
    assert refused.value.message.startswith(f"model_registry.four_eyes: {RUNNER} started run abcdef123456")
    assert reg.updates == []
    assert [e.action for e in audit.entries] == ["start"]

    # When another identity approves it, or the runner rejects it, or the rule is off, Then it is decided
    assert registry.decide(api_decision("approve", APPROVER), reg, audit).approval_status == "Approved"
    assert registry.decide(api_decision("reject", RUNNER), reg, audit).approval_status == "Rejected"
    assert registry.decide(api_decision("approve", RUNNER, four_eyes=False), reg, audit).approval_status == "Approved"


def test_the_deploy_workflows_role_may_never_approve() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1)
    with pytest.raises(Forbidden, match="may start runs but never approve"):
        registry.decide(api_decision("approve", "arn:aws:sts::123456789012:assumed-role/ci/x", source="ci"), reg, audit)
    assert reg.updates == []


def test_the_run_is_the_one_sagemaker_recorded_as_the_creator() -> None:
    # an update can rewrite CustomerMetadataProperties; MetadataProperties.GeneratedBy is set once, at registration
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1)
    reg.packages[1]["MetadataProperties"] = {"GeneratedBy": "arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/run2"}
    started_run(audit, RUNNER, "run2")
    with pytest.raises(Conflict, match="started run run2"):
        registry.decide(api_decision("approve", RUNNER), reg, audit)


def test_who_started_the_run_may_not_deploy_its_model_through_the_api() -> None:
    reg, audit = FakeRegistry(), FakeAudit()
    reg.add(1, status="Approved")
    started_run(audit)
    command = endpoints.DeployCommand(version=1, actor=RUNNER, source="api", four_eyes=True)
    settings = DeploymentSettings(instance_type="ml.m5.large", instance_count=1, on_approval=False)
    untouched: Any = None  # the refusal comes before any endpoint call
    with pytest.raises(Conflict, match="another identity must deploy it"):
        endpoints.deploy(command, settings, registry=reg, hosting=untouched, audit=audit)


NOW = datetime(2026, 12, 5, 2, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, "2026-12-05T02:00:00.123Z"),  # the request's time
        ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00.000Z"),  # an earlier one
        ("2026-12-05T03:00:00.123+01:00", "2026-12-05T02:00:00.123Z"),  # any offset, in UTC
    ],
)
def test_a_run_reads_its_data_as_of_the_request_or_an_earlier_time(requested: str | None, expected: str) -> None:
    assert runs.data_as_of(requested, NOW) == expected


@pytest.mark.parametrize(
    ("requested", "problem"),
    [
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-12-01T00:00:00", "has no UTC offset"),
        ("2999-01-01T00:00:00Z", "is in the future"),
    ],
)
def test_a_malformed_or_future_data_as_of_is_refused_naming_the_field(requested: str, problem: str) -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    request = StartRunRequest(data_as_of=requested)
    with pytest.raises(InvalidRequest) as raised:
        runs.data_as_of(requested, NOW)
    assert str(raised.value).startswith("data_as_of: ")
    assert problem in str(raised.value)
    # and no run starts
    with pytest.raises(InvalidRequest):
        runs.start_run(runs.StartCommand(caller="alice", request=request), pipelines, audit)
    assert pipelines.started == []


def test_data_as_of_is_not_a_parameter_a_caller_sets_directly() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    request = StartRunRequest(parameters={"DataAsOf": "2026-12-01T00:00:00Z"})
    with pytest.raises(InvalidRequest) as raised:
        runs.start_run(runs.StartCommand(caller="alice", request=request), pipelines, audit)
    assert "parameters.DataAsOf: set by the request's data_as_of field" in str(raised.value)
    assert pipelines.started == []


def test_a_model_names_its_data_and_an_older_one_says_it_has_none() -> None:
    reg = FakeRegistry()
    reg.add(1, "Approved")
    older = registry.model_detail(reg.describe(1))
    assert older.dataset is None
    metadata = {"DataAsOf": "2026-12-05T02:00:00.000Z", "DataManifest": "s3://b/m.jsonl", "DataManifestSha256": "ab"}
    package = {**reg.describe(1), "CustomerMetadataProperties": metadata}
    assert registry.model_detail(package).dataset == DatasetRef(
        as_of="2026-12-05T02:00:00.000Z", manifest_uri="s3://b/m.jsonl", manifest_sha256="ab"
    )

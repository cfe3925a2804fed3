"""The Slack button path in-process against moto and a stand-in Slack: the click handler checks and queues
(signed, allow-listed), the decision worker decides once per click from the real queue."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from slack_sdk.signature import SignatureVerifier

from local.dispatch import failed_ids, sqs_event
from local.webhooks import WebhookRecorder
from tests.integration.conftest import TEST_SECRET, LambdaContext, Stack, configure_slack, event
from tests.integration.test_api import register_model

APPROVER = "U012AB3CD"


@pytest.fixture
def handler(
    stack: Stack,
    slack: WebhookRecorder,
    load_function: Callable[[str, str], ModuleType],
    monkeypatch: pytest.MonkeyPatch,
) -> ModuleType:
    monkeypatch.setenv("SLACK_RESPONSE_URL_PREFIX", slack.url)
    register_model(stack, 0.73, "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x/execution/abcdef123456")
    return load_function("slack_actions", "SlackActionsFunction")


@pytest.fixture
def worker(handler: ModuleType, load_function: Callable[[str, str], ModuleType]) -> ModuleType:
    return load_function("slack_decisions", "SlackDecisionsFunction")


def click(
    slack: WebhookRecorder, name: str = "approve", at: int | None = None, secret: str = TEST_SECRET, **payload: Any
) -> dict[str, Any]:
    """The sample click, pointed at the stand-in Slack and signed at `at` (now by default)."""
    sample = event("slack_actions", name)
    raw = base64.b64decode(sample["body"]).decode() if sample["isBase64Encoded"] else sample["body"]
    body_payload = json.loads(parse_qs(raw)["payload"][0])
    body_payload["response_url"] = slack.response_url
    body_payload.update(payload)
    body = urlencode({"payload": json.dumps(body_payload)})
    timestamp = str(at if at is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}
    encoded = base64.b64encode(body.encode()).decode() if sample["isBase64Encoded"] else body
    return event("slack_actions", name, body=encoded, headers=headers)


def send(handler: ModuleType, request: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    response = handler.lambda_handler(request, LambdaContext())
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def queue_url(stack: Stack, logical_id: str = "DecisionQueue") -> str:
    return str(stack.aws["sqs"].get_queue_url(QueueName=stack.values[f"{logical_id}.QueueName"])["QueueUrl"])


def queued(stack: Stack, logical_id: str = "DecisionQueue") -> int:
    attributes = stack.aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url(stack, logical_id), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def deliver(stack: Stack, worker: ModuleType) -> set[str]:
    """One poll of the decision queue as Lambda's event source makes it (the messages visible again at once
    when they fail, so the next poll is the next attempt); returns the ids the worker reported failed."""
    url = queue_url(stack)
    answer = stack.aws["sqs"].receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
    )
    messages = answer.get("Messages", [])
    assert messages, "nothing was queued"
    try:
        response = worker.lambda_handler(sqs_event(messages, stack.values["DecisionQueue.Arn"]), LambdaContext())
    except BatchProcessingError:  # Powertools raises when every record failed: Lambda retries them all
        return {m["MessageId"] for m in messages}
    failed = failed_ids(response)
    for message in messages:
        if message["MessageId"] not in failed:
            stack.aws["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return failed


def approval(stack: Stack) -> str:
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{stack.values['AWS::StackName']}/1"
    return str(stack.aws["sagemaker"].describe_model_package(ModelPackageName=package)["ModelApprovalStatus"])


def test_sample_events_are_signed_with_the_documented_secret() -> None:
    for name in ("approve", "reject", "approve_base64"):
        sample = event("slack_actions", name)
        body = base64.b64decode(sample["body"]).decode() if sample["isBase64Encoded"] else sample["body"]
        expected = SignatureVerifier(TEST_SECRET).generate_signature(
            timestamp=sample["headers"]["X-Slack-Request-Timestamp"], body=body
        )
        assert sample["headers"]["X-Slack-Signature"] == expected


@pytest.mark.parametrize(
    ("name", "status"), [("approve", "Approved"), ("reject", "Rejected"), ("approve_base64", "Approved")]
)
def test_an_allowed_click_is_queued_and_answered_then_decided_audited_and_the_message_updated(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType, name: str, status: str
) -> None:
    configure_slack(stack)

    # the click handler answers Slack with an empty 200 before anything is decided
    assert send(handler, click(slack, name)) == (200, None)
    assert (approval(stack), stack.audit(), queued(stack)) == ("PendingManualApproval", [], 1)

    assert deliver(stack, worker) == set()

    assert approval(stack) == status
    [entry] = stack.audit()
    assert entry["source"]["S"] == "slack"
    assert entry["actor"]["S"] == f"slack:{APPROVER} (alice)"
    [reply] = slack.posts("/actions/")
    assert reply.body["replace_original"] is True
    assert f"<@{APPROVER}>" in reply.body["text"]
    assert queued(stack) == 0
    # the same message, updated: its evidence kept, the decision where the buttons were
    sample = event("slack_actions", name)
    raw = base64.b64decode(sample["body"]).decode() if sample["isBase64Encoded"] else sample["body"]
    sent = json.loads(parse_qs(raw)["payload"][0]).get("message", {}).get("blocks", [])
    assert reply.body["blocks"][:-1] == [b for b in sent if b.get("block_id") != "decision"]
    assert reply.body["blocks"][-1]["text"]["text"] == reply.body["text"]


def test_the_sample_queue_event_is_what_the_click_handler_queues_for_the_sample_click(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType
) -> None:
    configure_slack(stack)
    send(handler, click(slack))
    [queued_message] = stack.aws["sqs"].receive_message(QueueUrl=queue_url(stack))["Messages"]
    queued_click = json.loads(queued_message["Body"])
    [record] = event("slack_decisions", "click")["Records"]

    # the same click, but for the response URL the test points at the stand-in Slack
    assert json.loads(record["body"]) == {**queued_click, "response_url": json.loads(record["body"])["response_url"]}
    # and the worker takes the sample as Lambda would deliver it
    slack.received.clear()
    worker.lambda_handler(event("slack_decisions", "click"), LambdaContext())
    assert approval(stack) == "Approved"


def test_a_click_sent_twice_and_delivered_twice_decides_once(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType
) -> None:
    configure_slack(stack)
    request = click(slack, "reject")
    # Slack retries a click it thinks went unanswered; a captured one may be replayed inside the window
    assert send(handler, request)[0] == 200
    assert send(handler, request)[0] == 200
    assert queued(stack) == 2

    assert deliver(stack, worker) == set()
    # SQS delivers at least once: the same message again
    stack.aws["sqs"].send_message(QueueUrl=queue_url(stack), MessageBody=json.dumps(_queued_body(slack)))
    assert deliver(stack, worker) == set()

    assert len(stack.audit()) == 1
    assert approval(stack) == "Rejected"
    assert queued(stack) == 0


def _queued_body(slack: WebhookRecorder) -> dict[str, Any]:
    """What the click handler queues for the sample reject click."""
    from control_plane.slack_approvals import parse

    raw = click(slack, "reject")["body"]
    body: dict[str, Any] = json.loads(parse(raw).model_dump_json())
    return body


def test_a_decision_that_cannot_be_made_is_told_in_the_thread_at_once(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType
) -> None:
    configure_slack(stack)
    missing = [{"action_id": "approve", "value": '{"group": "scratch-detector", "version": 7}', "action_ts": "1.3"}]
    assert send(handler, click(slack, actions=missing))[0] == 200

    assert deliver(stack, worker) == set()  # retrying cannot find version 7: not retried

    [post] = slack.posts("/api/chat.postMessage")
    assert post.body["thread_ts"] == "1795000000.000100"
    assert post.body["channel"] == "C0SCRATCHES"
    assert "v7" in post.body["text"]
    assert "not" in post.body["text"]
    assert (stack.audit(), queued(stack), queued(stack, "DeadLetterQueue")) == ([], 0, 0)


def test_a_failing_decision_is_retried_then_told_in_the_thread_and_dead_lettered(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType
) -> None:
    configure_slack(stack)
    assert send(handler, click(slack))[0] == 200
    # the worker cannot record that it is deciding: a service failure, which another attempt may not meet
    stack.aws["dynamodb"].delete_table(TableName=stack.values["IdempotencyTable"])

    for attempt in (1, 2, 3):
        assert len(deliver(stack, worker)) == 1
        told = slack.posts("/api/chat.postMessage")
        assert len(told) == (1 if attempt == 3 else 0), attempt

    assert "attempt 3 of 3" in told[0].body["text"]
    assert "dead-letter" in told[0].body["text"]
    assert approval(stack) == "PendingManualApproval"
    # the queue's redrive policy moves the click to the dead letters at the next receive
    stack.aws["sqs"].receive_message(QueueUrl=queue_url(stack), VisibilityTimeout=0)
    assert (queued(stack), queued(stack, "DeadLetterQueue")) == (0, 1)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: click(s, secret="not-the-secret"), id="wrong secret"),
        pytest.param(lambda s: click(s, at=int(time.time()) - 360), id="stale"),
        pytest.param(lambda s: click(s, at=int(time.time()) + 360), id="from the future"),
        pytest.param(lambda s: {**click(s), "body": click(s)["body"].replace("approve", "reject")}, id="altered body"),
        pytest.param(lambda s: event("slack_actions", "approve"), id="sample as stored (2026 timestamp)"),
        pytest.param(
            lambda s: {**click(s), "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            id="unsigned",
        ),
        pytest.param(
            lambda s: {**click(s), "headers": {**click(s)["headers"], "X-Slack-Request-Timestamp": "soon"}},
            id="timestamp not a number",
        ),
    ],
)
def test_forged_or_stale_requests_are_401_and_change_nothing(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, forge: Callable[[WebhookRecorder], dict[str, Any]]
) -> None:
    configure_slack(stack)

    code, body = send(handler, forge(slack))

    assert (code, body and body["error"]["code"]) == (401, "Unauthorized")
    assert (approval(stack), stack.audit(), slack.received, queued(stack)) == ("PendingManualApproval", [], [], 0)


@pytest.mark.parametrize(
    ("approvers", "secret"),
    [
        pytest.param("U999ZZZ99", None, id="user not on the allow-list"),
        pytest.param("", None, id="empty allow-list"),
        pytest.param(APPROVER, {"signing_secret": "generated0at0creation", "bot_token": ""}, id="secret as deployed"),
        pytest.param(APPROVER, {"bot_token": "xoxb-test"}, id="secret without signing_secret"),
    ],
)
def test_refused_without_an_allowed_user_or_a_secret(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, approvers: str, secret: dict[str, str] | None
) -> None:
    configure_slack(stack, approvers, secret)

    code, body = send(handler, click(slack))

    assert (code, body and body["error"]["code"]) == (403, "Forbidden")
    assert (approval(stack), stack.audit(), queued(stack)) == ("PendingManualApproval", [], 0)


def test_a_deleted_secret_refuses_everything(stack: Stack, slack: WebhookRecorder, handler: ModuleType) -> None:
    configure_slack(stack)
    stack.aws["secretsmanager"].delete_secret(SecretId=stack.values["SlackSecret"], ForceDeleteWithoutRecovery=True)

    code, _ = send(handler, click(slack))

    assert (code, queued(stack)) == (403, 0)


def test_a_button_for_another_group_or_a_foreign_response_url_is_400(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType
) -> None:
    configure_slack(stack)
    other = click(
        slack, actions=[{"action_id": "approve", "value": '{"group": "other", "version": 1}', "action_ts": "1.2"}]
    )
    foreign = click(slack, response_url="https://attacker.example/collect")

    assert send(handler, other)[0] == 400
    assert send(handler, foreign)[0] == 400
    assert queued(stack) == 0


def test_header_names_in_any_case_are_read(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, worker: ModuleType
) -> None:
    configure_slack(stack)
    request = click(slack)
    request["headers"] = {name.lower(): value for name, value in request["headers"].items()}
    request["multiValueHeaders"] = {name: [value] for name, value in request["headers"].items()}

    code, _ = send(handler, request)
    deliver(stack, worker)

    assert code == 200
    assert approval(stack) == "Approved"

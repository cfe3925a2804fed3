"""POST /slack/actions in-process against moto and a stand-in Slack: signed, allow-listed, once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

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


def send(handler: ModuleType, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(request, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


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
def test_an_allowed_click_decides_audits_and_updates_the_message(
    stack: Stack, slack: WebhookRecorder, handler: ModuleType, name: str, status: str
) -> None:
    configure_slack(stack)

    code, body = send(handler, click(slack, name))

    assert code == 200
    assert body["approval_status"] == status
    assert approval(stack) == status
    [entry] = stack.audit()
    assert entry["source"]["S"] == "slack"
    assert entry["actor"]["S"] == f"slack:{APPROVER} (alice)"
    [reply] = slack.posts("/actions/")
    assert reply.body["replace_original"] is True
    assert f"<@{APPROVER}>" in reply.body["text"]


def test_a_replayed_click_is_refused(stack: Stack, slack: WebhookRecorder, handler: ModuleType) -> None:
    configure_slack(stack)
    request = click(slack, "reject")
    send(handler, request)

    code, body = send(handler, request)

    assert (code, body["error"]["code"]) == (409, "Replayed")
    assert len(stack.audit()) == 1
    assert len(slack.posts("/actions/")) == 1


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

    assert (code, body["error"]["code"]) == (401, "Unauthorized")
    assert approval(stack) == "PendingManualApproval"
    assert stack.audit() == []
    assert slack.received == []


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

    assert (code, body["error"]["code"]) == (403, "Forbidden")
    assert approval(stack) == "PendingManualApproval"
    assert stack.audit() == []


def test_a_deleted_secret_refuses_everything(stack: Stack, slack: WebhookRecorder, handler: ModuleType) -> None:
    configure_slack(stack)
    stack.aws["secretsmanager"].delete_secret(SecretId=stack.values["SlackSecret"], ForceDeleteWithoutRecovery=True)

    code, _ = send(handler, click(slack))

    assert code == 403
    assert approval(stack) == "PendingManualApproval"


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
    assert approval(stack) == "PendingManualApproval"


def test_header_names_in_any_case_are_read(stack: Stack, slack: WebhookRecorder, handler: ModuleType) -> None:
    configure_slack(stack)
    request = click(slack)
    request["headers"] = {name.lower(): value for name, value in request["headers"].items()}
    request["multiValueHeaders"] = {name: [value] for name, value in request["headers"].items()}

    code, _ = send(handler, request)

    assert code == 200
    assert approval(stack) == "Approved"

"""The alarm topic's notifications through notify, as its role: each alarm change becomes one Slack message in the
approvers' channel."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from local.webhooks import WebhookRecorder
from tests.integration.conftest import LambdaContext, Stack, configure_slack, event

Load = Callable[[str, str], ModuleType]


def with_message(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The SNS sample with fields of the CloudWatch notification in its Message replaced."""
    record = sample["Records"][0]["Sns"]
    record["Message"] = json.dumps({**json.loads(record["Message"]), **changes})
    return sample


def test_an_alarm_notification_becomes_one_slack_message_naming_the_alarm_its_state_and_reason(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    # Given the Slack app configured, and the notification CloudWatch published to the alarm topic
    configure_slack(stack)
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "alarm")

    # When SNS delivers it to notify, twice (SNS delivers at least once)
    handler.lambda_handler(sample, LambdaContext())
    handler.lambda_handler(sample, LambdaContext())

    # Then the channel gets one message: the alarm's name, its new and old state, CloudWatch's reason, a link
    [post] = slack.posts("/api/chat.postMessage")
    assert post.body["channel"] == stack.values["SlackChannel"]
    assert "scratch-detector-dev-DeadLetterQueueNotEmpty is ALARM (was OK)" in post.body["text"]
    assert "Threshold Crossed: 1 out of the last 1 datapoints" in post.body["text"]
    shown = json.dumps(post.body["blocks"])
    assert "Something waits in the dead-letter queue" in shown
    assert (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/scratch-detector-dev-DeadLetterQueueNotEmpty|Open the alarm in CloudWatch" in shown
    )


def test_the_recovery_is_a_second_message(stack: Stack, slack: WebhookRecorder, load_function: Load) -> None:
    configure_slack(stack)
    handler = load_function("notify", "NotifyFunction")
    handler.lambda_handler(event("notify", "alarm"), LambdaContext())

    # When the alarm goes back to OK (the OKActions)
    recovered = with_message(
        event("notify", "alarm"),
        NewStateValue="OK",
        OldStateValue="ALARM",
        NewStateReason="Threshold Crossed: 1 datapoint [0.0 (05/12/26 00:05:00)] was not greater than the threshold",
        StateChangeTime="2026-12-05T00:10:27.922+0000",
    )
    handler.lambda_handler(recovered, LambdaContext())

    # Then the channel is told that too
    first, second = slack.posts("/api/chat.postMessage")
    assert "is ALARM (was OK)" in first.body["text"]
    assert "is OK (was ALARM)" in second.body["text"]


def test_a_message_that_is_not_an_alarm_notification_fails_naming_the_field_and_posts_nothing(
    stack: Stack, slack: WebhookRecorder, load_function: Load
) -> None:
    configure_slack(stack)
    handler = load_function("notify", "NotifyFunction")
    sample = event("notify", "alarm")
    sample["Records"][0]["Sns"]["Message"] = json.dumps({"AlarmName": "x", "NewStateValue": "FIRE"})

    with pytest.raises(ValidationError, match="NewStateValue"):
        handler.lambda_handler(sample, LambdaContext())
    assert slack.received == []

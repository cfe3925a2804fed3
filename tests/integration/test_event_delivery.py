"""EventBridge's delivery of the rules' events to the functions, as the local dispatcher plays it: an event it cannot
deliver is retried under the target's RetryPolicy, then kept in the dead-letter queue the template names."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.dispatch import Dispatcher, Rule
from local.functions import Functions
from tests.integration.conftest import Stack


@pytest.fixture
def dispatcher(stack: Stack) -> Iterator[Dispatcher]:
    started = Dispatcher(
        stack.template, Functions(stack.template), events=stack.aws["events"], sqs=stack.aws["sqs"], overrides={}
    )
    started.create_rules()
    yield started.start()
    started.stop()


def schedule_rule(dispatcher: Dispatcher) -> Rule:
    [rule] = [r for r in dispatcher.rules if r.schedule]
    return rule


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    url = stack.aws["sqs"].get_queue_url(QueueName=stack.values["DeadLetterQueue.QueueName"])["QueueUrl"]
    answer = stack.aws["sqs"].receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    return list(answer.get("Messages", []))


def until_undelivered(dispatcher: Dispatcher, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not dispatcher.undelivered:
        assert time.monotonic() < deadline, "the event was neither delivered nor given up"
        time.sleep(0.1)


def test_an_event_eventbridge_cannot_deliver_is_retried_then_kept_in_the_dead_letter_queue(
    stack: Stack, dispatcher: Dispatcher
) -> None:
    # Given the schedule's function refusing EventBridge's invocations (throttled)
    rule = schedule_rule(dispatcher)
    assert rule.target is not None
    with dispatcher.throttle(rule.function):
        # When the schedule fires
        dispatcher.fire(rule, datetime.now(UTC))
        until_undelivered(dispatcher)

    # Then EventBridge tried as often as the target's RetryPolicy lets it, and the event waits in the dead letters
    # with what a person needs to replay it
    [message] = dead_letters(stack)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "THROTTLING"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"] == str(rule.target.max_attempts)
    assert attributes["RULE_ARN"] == rule.target.rule_arn
    assert attributes["TARGET_ARN"].endswith(f":function:{rule.function}")
    assert json.loads(message["Body"])["detail-type"] == "Scheduled Event"
    assert (rule.function, "Scheduled Event") not in dispatcher.delivered


def test_an_event_older_than_the_targets_maximum_age_is_not_retried(stack: Stack, dispatcher: Dispatcher) -> None:
    rule = schedule_rule(dispatcher)
    assert rule.target is not None
    with dispatcher.throttle(rule.function):
        dispatcher.fire(rule, datetime.fromtimestamp(time.time() - rule.target.max_age_seconds, UTC))
        until_undelivered(dispatcher)

    [message] = dead_letters(stack)
    assert message["MessageAttributes"]["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == "MaximumEventAgeInSeconds"
    assert message["MessageAttributes"]["RETRY_ATTEMPTS"]["StringValue"] == "0"


def test_without_a_queue_policy_for_the_rule_the_undeliverable_event_is_dropped(
    stack: Stack, dispatcher: Dispatcher
) -> None:
    # Given a template whose dead-letter queue's policy does not name the schedule's rule
    rule = schedule_rule(dispatcher)
    policy = stack.template.resource("DeadLetterQueuePolicy")["Properties"]["PolicyDocument"]
    allowed = policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"]
    kept = list(allowed)
    allowed[:] = [a for a in allowed if "ScheduledStartFunctionSchedule" not in json.dumps(a)]
    try:
        with dispatcher.throttle(rule.function):
            dispatcher.fire(rule, datetime.now(UTC))
            until_undelivered(dispatcher)
    finally:
        allowed[:] = kept

    # Then EventBridge could not send it to the queue: it is gone (as on AWS, where only a metric tells)
    assert dead_letters(stack) == []

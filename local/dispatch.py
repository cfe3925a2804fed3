"""Events to the functions whose template.yaml event sources match them.

Each EventBridgeRule and Schedule event of the template becomes a rule in moto's EventBridge with an SQS
queue as its target: moto decides which events match (no pattern matcher here) and delivers them. A thread
reads the queues and invokes the rule's function with each event, as Lambda's asynchronous invocation does:
a failed event is tried three times, then goes to the function's dead-letter queue. An event EventBridge cannot
deliver (the function's invocations throttled) follows the rule target's RetryPolicy and DeadLetterConfig
(local/event_delivery.py).
Scheduled rules fire on their expression while the stack runs (rate(...) and cron(...)).
Each SQS event reads its template queue as Lambda's event source mapping does: batches of records, the
failures a function reports (ReportBatchItemFailures) or all of a batch that raised left on the queue, whose
redrive policy moves a message to its dead-letter queue after maxReceiveCount receives. The visibility
timeout is cut to RETRY_SECONDS so that retries come in seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.event_delivery import Failure, Target, dead_letter_attributes, queue_policy_allows, send_to_dead_letters
from local.functions import Functions
from local.iam import enforce
from local.schedules import next_time
from local.template import ACCOUNT, local_values
from sam_stack.template import Template

LOG = logging.getLogger("local.dispatch")
ATTEMPTS = 3
RETRY_SECONDS = 2


@dataclass
class Rule:
    name: str
    function: str
    queue_url: str
    schedule: str | None = None
    enabled: bool = True
    # an SQS event source: the queue's ARN, and its batch size
    source_arn: str | None = None
    batch_size: int = 10
    # an EventBridge rule's target: its retry policy and dead-letter queue
    target: Target | None = None


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """What Lambda's SQS event source passes a function: the received messages as records."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for m in messages
        ]
    }


def failed_ids(response: Any) -> set[str]:
    """The records a function reported failed (ReportBatchItemFailures)."""
    failures = response.get("batchItemFailures", []) if isinstance(response, dict) else []
    return {str(f["itemIdentifier"]) for f in failures}


class Dispatcher:
    def __init__(
        self, template: Template, functions: Functions, *, events: Any, sqs: Any, overrides: dict[str, str]
    ) -> None:
        self.template, self.functions, self.events, self.sqs = template, functions, events, sqs
        self.values = local_values(overrides)
        self.rules: list[Rule] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.delivered: list[tuple[str, str]] = []  # (function, detail-type), for tests and the run's report
        self.undelivered: list[tuple[str, str]] = []  # (rule ARN, the RetryPolicy limit reached)
        self._held: set[str] = set()  # functions whose SQS event sources deliver nothing for now
        self._throttled: set[str] = set()  # functions whose invocations by EventBridge fail for now

    def create_rules(self) -> None:
        for function, resource in sorted(self.template.of_type("AWS::Serverless::Function").items()):
            for event_name, event in sorted(resource["Properties"].get("Events", {}).items()):
                if event["Type"] == "SQS":
                    self.rules.append(self._sqs_source(function, event_name, event))
                elif event["Type"] in {"EventBridgeRule", "Schedule"}:
                    self.rules.append(self._event_rule(function, event_name, event))

    def _sqs_source(self, function: str, event_name: str, event: dict[str, Any]) -> Rule:
        props = self.template.resolve(event["Properties"], self.values)
        url = self.sqs.get_queue_url(QueueName=props["Queue"].rsplit(":", 1)[-1])["QueueUrl"]
        return Rule(
            f"{function}-{event_name}", function, url, None, True, props["Queue"], int(props.get("BatchSize", 10))
        )

    def _event_rule(self, function: str, event_name: str, event: dict[str, Any]) -> Rule:
        name = f"{function}-{event_name}"
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        props = self.template.resolve(event["Properties"], self.values)
        target = Target.of(name, function, props)
        # the rule SAM makes is <function><event>: what the template's queue policy names
        self.values[f"{function}{event_name}.Arn"] = target.rule_arn
        if event["Type"] == "EventBridgeRule":
            self.events.put_rule(Name=name, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
            attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            queue_arn = attributes["Attributes"]["QueueArn"]
            self.events.put_targets(Rule=name, Targets=[{"Id": "function", "Arn": queue_arn}])
            return Rule(name, function, queue_url, target=target)
        # moto keeps the rule but never fires it (and would send it every event if it had a target): the ticker
        # below puts its Scheduled Events on the queue instead
        state = props.get("State", "ENABLED" if props.get("Enabled", True) else "DISABLED")
        self.events.put_rule(Name=name, ScheduleExpression=props["Schedule"], State=state)
        return Rule(name, function, queue_url, props["Schedule"], state == "ENABLED", target=target)

    def start(self) -> Dispatcher:
        for rule in self.rules:
            thread = threading.Thread(target=self._consume, args=(rule,), name=f"rule-{rule.name}", daemon=True)
            thread.start()
            self.threads.append(thread)
            if rule.schedule and rule.enabled:
                ticker = threading.Thread(target=self._tick, args=(rule,), name=f"schedule-{rule.name}", daemon=True)
                ticker.start()
                self.threads.append(ticker)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)

    @contextmanager
    def throttle(self, function: str) -> Iterator[None]:
        """Lambda refuses EventBridge's invocations of `function` while inside (its concurrency used up): each
        delivery fails with THROTTLING and is retried under the rule target's RetryPolicy."""
        self._throttled.add(function)
        try:
            yield
        finally:
            self._throttled.discard(function)

    @contextmanager
    def hold(self, function: str) -> Iterator[None]:
        """Deliver nothing from `function`'s SQS event sources while inside (a worker that is slow to start)."""
        self._held.add(function)
        try:
            yield
        finally:
            self._held.discard(function)

    def _consume(self, rule: Rule) -> None:
        while not self.stopping.is_set():
            if rule.function in self._held:
                self.stopping.wait(0.1)
                continue
            try:
                answer = self.sqs.receive_message(
                    QueueUrl=rule.queue_url,
                    MaxNumberOfMessages=min(rule.batch_size, 10),
                    WaitTimeSeconds=1,
                    VisibilityTimeout=RETRY_SECONDS,
                    MessageSystemAttributeNames=["All"],
                )
            except Exception:  # the emulator is shutting down
                if self.stopping.is_set():
                    return
                raise
            messages = answer.get("Messages", [])
            if rule.function in self._held:  # held while this receive waited: the messages go back
                for message in messages:
                    self.sqs.change_message_visibility(
                        QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            elif messages and rule.source_arn:
                self._deliver_batch(rule, messages)
            elif messages:
                for message in messages:
                    self._deliver(rule, message)

    def _deliver_batch(self, rule: Rule, messages: list[dict[str, Any]]) -> None:
        assert rule.source_arn is not None
        try:
            failed = failed_ids(self.functions.invoke(rule.function, sqs_event(messages, rule.source_arn)))
        except Exception:
            LOG.exception("batch failed", extra={"function": rule.function})
            return  # every message becomes visible again
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.delivered.append((rule.function, "sqs"))

    def _deliver(self, rule: Rule, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        # moto 5.2's default target input leaves out `account`, which EventBridge always sends
        event.setdefault("account", ACCOUNT)
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if rule.target is not None and rule.function in self._throttled:
            self._undelivered(rule.target, message, event, queue_url=rule.queue_url)
            return
        try:
            self.functions.invoke(rule.function, event)
            self.delivered.append((rule.function, str(event.get("detail-type"))))
        except Exception:
            LOG.exception("event failed", extra={"function": rule.function, "attempt": attempt})
            if attempt < ATTEMPTS:
                return  # the message becomes visible again: Lambda's retry
            self.dead_letter(rule.function, event, attempt)
        self.sqs.delete_message(QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _undelivered(self, target: Target, message: dict[str, Any], event: dict[str, Any], *, queue_url: str) -> None:
        """EventBridge could not invoke the function: again at once (locally), or, once the RetryPolicy is spent, to
        the target's dead-letter queue if its policy lets the rule send there, else dropped."""
        attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        condition = target.exhausted(event, attempts)
        if condition is None:
            self.sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            return
        failure = Failure("THROTTLING", "Rate Exceeded.")
        allowed = target.dead_letter_arn is not None and queue_policy_allows(
            self.template, self.values, queue_arn=target.dead_letter_arn, source_arn=target.rule_arn
        )
        if allowed:
            attributes = dead_letter_attributes(target, failure, condition=condition, attempts=attempts)
            send_to_dead_letters(self.sqs, target, event, attributes=attributes)
        else:
            LOG.error("undeliverable event dropped: the dead-letter queue's policy does not let the rule send")
        self.undelivered.append((target.rule_arn, condition))
        self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def dead_letter(self, function: str, event: dict[str, Any], attempt: int) -> None:
        """The function's DeadLetterQueue gets the event, as Lambda sends it after the last attempt."""
        target = self.resource_dead_letter(function)
        LOG.error("event failed %d times: to the dead-letter queue %s", attempt, target)
        if target:
            url = self.sqs.get_queue_url(QueueName=target.rsplit(":", 1)[-1])["QueueUrl"]
            # Lambda sends it with the function's role: the role must allow sqs:SendMessage on the queue
            with enforce.acting_as(enforce.function_identity(function)):
                self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))

    def resource_dead_letter(self, function: str) -> str | None:
        config = self.template.resource(function)["Properties"].get("DeadLetterQueue")
        return str(self.template.resolve(config["TargetArn"], self.values)) if config else None

    def _tick(self, rule: Rule) -> None:
        assert rule.schedule is not None
        while not self.stopping.is_set():
            now = datetime.now(UTC)
            due = next_time(rule.schedule, now)
            if self.stopping.wait(max(0.0, (due - now).total_seconds())):
                return
            self.fire(rule, due)

    def fire(self, rule: Rule, at: datetime) -> None:
        """Put the "Scheduled Event" EventBridge would deliver for `rule` at `at` on its queue."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": (at - timedelta(microseconds=at.microsecond)).isoformat().replace("+00:00", "Z"),
            "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule.name}"],
            "detail": {},
        }
        self.sqs.send_message(QueueUrl=rule.queue_url, MessageBody=json.dumps(event))

"""Bus events to the functions whose template.yaml rules match them.

Each EventBridgeRule and Schedule event of the template becomes a rule in moto's EventBridge with an SQS
queue as its target: moto decides which events match (no pattern matcher here) and delivers them. A thread
reads the queues and invokes the rule's function with each event, as Lambda's asynchronous invocation does:
a failed event is tried three times, then dropped with a log line (the template's dead-letter queue).
Scheduled rules fire on their expression while the stack runs (rate(...) and cron(...)).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.functions import Functions
from local.schedules import next_time
from local.template import ACCOUNT, Template

LOG = logging.getLogger("local.dispatch")
ATTEMPTS = 3


@dataclass
class Rule:
    name: str
    function: str
    queue_url: str
    schedule: str | None = None
    enabled: bool = True


class Dispatcher:
    def __init__(
        self, template: Template, functions: Functions, events: Any, sqs: Any, overrides: dict[str, str]
    ) -> None:
        self.template, self.functions, self.events, self.sqs = template, functions, events, sqs
        self.overrides = overrides
        self.rules: list[Rule] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.delivered: list[tuple[str, str]] = []  # (function, detail-type), for tests and the run's report

    def create_rules(self) -> None:
        for function, resource in sorted(self.template.of_type("AWS::Serverless::Function").items()):
            for event_name, event in sorted(resource["Properties"].get("Events", {}).items()):
                if event["Type"] not in {"EventBridgeRule", "Schedule"}:
                    continue
                name = f"{function}-{event_name}"
                queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
                props = self.template.resolve(event["Properties"], self.overrides)
                if event["Type"] == "EventBridgeRule":
                    self.events.put_rule(Name=name, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
                    rule = Rule(name, function, queue_url)
                    attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
                    queue_arn = attributes["Attributes"]["QueueArn"]
                    self.events.put_targets(Rule=name, Targets=[{"Id": "function", "Arn": queue_arn}])
                else:
                    # moto keeps the rule but never fires it (and would send it every event if it had a
                    # target): the ticker below puts its Scheduled Events on the queue instead
                    state = props.get("State", "ENABLED" if props.get("Enabled", True) else "DISABLED")
                    self.events.put_rule(Name=name, ScheduleExpression=props["Schedule"], State=state)
                    rule = Rule(name, function, queue_url, props["Schedule"], state == "ENABLED")
                self.rules.append(rule)

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

    def _consume(self, rule: Rule) -> None:
        while not self.stopping.is_set():
            try:
                answer = self.sqs.receive_message(
                    QueueUrl=rule.queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=2,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            except Exception:  # the emulator is shutting down
                if self.stopping.is_set():
                    return
                raise
            for message in answer.get("Messages", []):
                self._deliver(rule, message)

    def _deliver(self, rule: Rule, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        # moto 5.2's default target input leaves out `account`, which EventBridge always sends
        event.setdefault("account", ACCOUNT)
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            self.functions.invoke(rule.function, event)
            self.delivered.append((rule.function, str(event.get("detail-type"))))
        except Exception:
            LOG.exception("event failed", extra={"function": rule.function, "attempt": attempt})
            if attempt < ATTEMPTS:
                return  # the message becomes visible again: Lambda's retry
            LOG.error("event dropped after %d attempts (dead-letter queue)", attempt)
        self.sqs.delete_message(QueueUrl=rule.queue_url, ReceiptHandle=message["ReceiptHandle"])

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

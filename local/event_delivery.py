"""EventBridge's side of a rule target: delivering an event to its function, and what it does with one it cannot
deliver (the target's RetryPolicy and DeadLetterConfig, from the template's event source).

EventBridge retries a delivery that failed for a retriable reason (the function's invoke throttled, say) with
back-off until the target's MaximumRetryAttempts or MaximumEventAgeInSeconds is reached (by default 185 and a day),
then sends the event to the target's dead-letter queue with the attributes RULE_ARN, TARGET_ARN, ERROR_CODE,
ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS, or drops it when there is none. It sends as its
service principal, so the queue's policy must let the rule send (EventBridge User Guide, "Using dead-letter queues
to process undelivered events"). Locally the retries come at once (no back-off); attempts and age are counted as
EventBridge counts them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.iam.policy import Decision, Request, as_list, evaluate
from local.template import ACCOUNT
from sam_stack.template import Template

LOG = logging.getLogger("local.event_delivery")
EVENTS_PRINCIPAL = "events.amazonaws.com"


@dataclass(frozen=True)
class Target:
    """A rule's function target as EventBridge holds it."""

    rule_arn: str
    function_arn: str
    # RetryPolicy's defaults when the template sets none
    max_attempts: int = 185
    max_age_seconds: int = 86400
    dead_letter_arn: str | None = None

    @classmethod
    def of(cls, name: str, function: str, properties: dict[str, Any]) -> Target:
        retry = properties.get("RetryPolicy", {})
        return cls(
            rule_arn=f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{name}",
            function_arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}",
            max_attempts=int(retry.get("MaximumRetryAttempts", 185)),
            max_age_seconds=int(retry.get("MaximumEventAgeInSeconds", 86400)),
            dead_letter_arn=properties.get("DeadLetterConfig", {}).get("Arn"),
        )

    def exhausted(self, event: dict[str, Any], attempts: int) -> str | None:
        """Which limit of the RetryPolicy an event tried `attempts` times (retries: attempts - 1) has reached."""
        if attempts - 1 >= self.max_attempts:
            return "MaximumRetryAttempts"
        sent = datetime.fromisoformat(str(event.get("time", datetime.now(UTC).isoformat())).replace("Z", "+00:00"))
        if (datetime.now(UTC) - sent).total_seconds() >= self.max_age_seconds:
            return "MaximumEventAgeInSeconds"
        return None


@dataclass(frozen=True)
class Failure:
    code: str  # EventBridge's ERROR_CODE (THROTTLING, NO_PERMISSIONS, NO_RESOURCE, ...)
    message: str


def dead_letter_attributes(target: Target, failure: Failure, *, condition: str, attempts: int) -> dict[str, Any]:
    values = {
        "RULE_ARN": target.rule_arn,
        "TARGET_ARN": target.function_arn,
        "ERROR_CODE": failure.code,
        "ERROR_MESSAGE": failure.message,
        "EXHAUSTED_RETRY_CONDITION": condition,
        "RETRY_ATTEMPTS": str(attempts - 1),
    }
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


def queue_policy_allows(template: Template, values: dict[str, str], *, queue_arn: str, source_arn: str) -> bool:
    """Whether a queue policy of the template lets EventBridge send to `queue_arn` for the rule `source_arn`
    (`values` resolve the template's references, the rules' ARNs among them)."""
    request = Request("sqs:SendMessage", queue_arn, (("aws:SourceArn", source_arn),))
    for policy in template.of_type("AWS::SQS::QueuePolicy").values():
        document = template.resolve(policy["Properties"]["PolicyDocument"], values)
        statements = [s for s in as_list(document["Statement"]) if _names_events(s)]
        decision, _ = evaluate(statements, request)
        if decision is Decision.ALLOW:
            return True
    return False


def _names_events(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal", {})
    return isinstance(principal, dict) and EVENTS_PRINCIPAL in as_list(principal.get("Service", []))


def send_to_dead_letters(sqs: Any, target: Target, event: dict[str, Any], *, attributes: dict[str, Any]) -> bool:
    """Send the undelivered event to the target's dead-letter queue; False (the event dropped) when it has none."""
    if target.dead_letter_arn is None:
        LOG.error("undeliverable event dropped", extra={"rule": target.rule_arn, "reason": "no dead-letter queue"})
        return False
    url = sqs.get_queue_url(QueueName=target.dead_letter_arn.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event), MessageAttributes=attributes)
    LOG.error("undeliverable event sent to the dead-letter queue", extra={"rule": target.rule_arn})
    return True

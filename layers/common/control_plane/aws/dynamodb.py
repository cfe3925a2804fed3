"""The audit trail, in DynamoDB."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from control_plane import cursors
from control_plane.aws.clients import LazyClient
from control_plane.errors import InvalidRequest
from control_plane.models import AuditEntry

# the sort key: the entry's time, then a suffix that keeps two entries of one millisecond apart
AT_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d#[0-9a-f]{8}$")
# `subject` and `at` are both words DynamoDB reserves in expressions
_NAMES = {"#subject": "subject"}


class AuditTrail:
    """Append-only: one item per decision or action, keyed by subject and time."""

    _db = LazyClient("dynamodb")

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self.table = table_name
        self._client = dynamodb

    def record(self, entry: AuditEntry) -> None:
        self._db.put_item(TableName=self.table, Item=_item(entry, uuid.uuid4().hex[:8]))

    def record_once(self, entry: AuditEntry, key: str) -> bool:
        """Record `entry` unless the entry of `key` is there already (False then): the key and the entry's time
        make the item's key, so a repeated event writes nothing twice, whatever happens after."""
        item = _item(entry, hashlib.sha256(key.encode()).hexdigest()[:8])
        try:
            self._db.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#subject)",
                ExpressionAttributeNames=_NAMES,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def history(
        self, subject: str, next_token: str | None, limit: int, *, newest_first: bool
    ) -> tuple[list[AuditEntry], str | None]:
        """One page of a subject's entries, and the cursor of the next (None after the last)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#subject = :subject",
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": {":subject": {"S": subject}},
            "ScanIndexForward": not newest_first,
            # a decision's record is read back at once by the consumers of its event (outside_decisions)
            "ConsistentRead": True,
            "Limit": limit,
        }
        if next_token:
            request["ExclusiveStartKey"] = {"subject": {"S": subject}, "at": {"S": _decode(next_token, subject)}}
        page = self._db.query(**request)
        last = page.get("LastEvaluatedKey")
        following = cursors.encode(subject, last["at"]["S"]) if last else None
        return [_entry(item) for item in page.get("Items", [])], following


def _item(entry: AuditEntry, suffix: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "subject": {"S": entry.subject},
        # time first, so a subject's history reads in order; the suffix keeps two entries of one millisecond apart
        "at": {"S": f"{entry.at.isoformat(timespec='milliseconds')}#{suffix}"},
        "action": {"S": entry.action},
        "actor": {"S": entry.actor},
        "source": {"S": entry.source},
    }
    if entry.details:
        item["details"] = {"M": {k: {"S": v} for k, v in entry.details.items()}}
    return item


def _entry(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        subject=item["subject"]["S"],
        action=item["action"]["S"],
        actor=item["actor"]["S"],
        source=item["source"]["S"],
        at=datetime.fromisoformat(item["at"]["S"].split("#", 1)[0]),
        details={k: v["S"] for k, v in item.get("details", {}).get("M", {}).items()},
    )


def _decode(token: str, subject: str) -> str:
    found_subject, at = cursors.decode(token)
    if found_subject != subject or not isinstance(at, str) or not AT_PATTERN.match(at):
        raise InvalidRequest(f"{cursors.NOT_OURS} for subject {subject}")
    return at

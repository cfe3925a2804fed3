"""The audit trail and one-time claims (Slack replay guard), in DynamoDB."""

from __future__ import annotations

import time
import uuid
from typing import Any

from botocore.exceptions import ClientError

from control_plane.aws.clients import LazyClient
from control_plane.models import AuditEntry


class AuditTrail:
    """Append-only: one item per decision or action, keyed by subject and time."""

    _db = LazyClient("dynamodb")

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self.table = table_name
        self._client = dynamodb

    def record(self, entry: AuditEntry) -> None:
        item = {
            "subject": {"S": entry.subject},
            # time first, so a subject's history reads in order; the suffix keeps two entries in one
            # millisecond apart
            "at": {"S": f"{entry.at.isoformat(timespec='milliseconds')}#{uuid.uuid4().hex[:8]}"},
            "action": {"S": entry.action},
            "actor": {"S": entry.actor},
            "source": {"S": entry.source},
        }
        if entry.details:
            item["details"] = {"M": {k: {"S": v} for k, v in entry.details.items()}}
        self._db.put_item(TableName=self.table, Item=item)


class Claims:
    """First writer wins: `claim(key)` is true once per key until the claim expires (table TTL)."""

    _db = LazyClient("dynamodb")

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self.table = table_name
        self._client = dynamodb

    def claim(self, key: str, ttl_seconds: int) -> bool:
        try:
            self._db.put_item(
                TableName=self.table,
                Item={"id": {"S": key}, "expiration": {"N": str(int(time.time()) + ttl_seconds)}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

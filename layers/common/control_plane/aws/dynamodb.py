"""The audit trail, in DynamoDB."""

from __future__ import annotations

import uuid
from typing import Any

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

"""The reply a custom resource owes CloudFormation: a PUT of the outcome to the pre-signed ResponseURL."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def reply(
    event: dict[str, Any], status: str, physical_id: str, *, reason: str = "", data: dict[str, str] | None = None
) -> int:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000] or status,
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310  (the URL is CloudFormation's pre-signed https URL)
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)

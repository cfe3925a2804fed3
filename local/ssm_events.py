"""SSM on loopback, in front of moto: every call goes to moto, and a parameter's creation, update or deletion
is announced on EventBridge as AWS announces it ("Parameter Store Change"), which moto does not do."""

from __future__ import annotations

import json
from typing import Any

from local.executor.server import JsonFront

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SSM"
CHANGES = {"PutParameter", "DeleteParameter"}


def ssm_front(moto_endpoint: str, events: Any) -> JsonFront:
    def after(operation: str, request: dict[str, Any], *, status: int, data: bytes) -> None:
        if operation not in CHANGES or status != 200:
            return
        if operation == "DeleteParameter":
            change = "Delete"
        else:
            change = "Create" if json.loads(data).get("Version") == 1 else "Update"
        detail = {"operation": change, "name": request["Name"], "type": request.get("Type", "String")}
        if request.get("Description"):
            detail["description"] = request["Description"]
        events.put_events(
            Entries=[
                {
                    "Source": "aws.ssm",
                    "DetailType": "Parameter Store Change",
                    "Resources": [f"arn:aws:ssm:us-east-1:123456789012:parameter{request['Name']}"],
                    "Detail": json.dumps(detail),
                }
            ]
        )

    return JsonFront(
        moto_endpoint, "ssm", target_prefix="AmazonSSM", answer=lambda _operation, _request: None, after=after
    )

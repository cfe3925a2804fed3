"""Small JSON documents from S3 (the evaluation report)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from control_plane.aws.clients import client

MAX_REPORT_BYTES = 1 << 20


def read_json(uri: str, s3: Any = None) -> dict[str, Any] | None:
    """The JSON object at `uri`, or None when there is none (a run that has not reached the step)."""
    parsed = urlparse(uri)
    try:
        body = (s3 or client("s3")).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NoSuchBucket"}:
            return None
        raise
    document = json.loads(body.read(MAX_REPORT_BYTES))
    return document if isinstance(document, dict) else None

"""What an ingest put into the feature group, kept in S3 for the runs that follow it, and how the offline store
compares with it.

Feature Store writes PutRecord's data to the offline store in batches, "within 15 minutes" (AWS's documentation,
feature-store-offline.html), so a run started right after an ingest finds some of its records there, or none.
Ingest writes one JSON file per call under the log's prefix (`--ingest-log`; the pipeline passes Preprocess the same
URI, pipeline_def.names.ingest_log_uri): `{"feature_group": ..., "records": [{"source_ref", "event_time", "status"},
...]}`. Preprocess reads them all with the pipeline's role (ListBucket and GetObject on the stack's bucket, which it
holds for its outputs) and counts the approved records that the offline store does not hold yet.

Records put by other means than detector.ingest are not in the log, so they are never counted as missing.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from detector.offline_store import StoreRow


@dataclass(frozen=True)
class Logged:
    source_ref: str
    event_time: float
    status: str


def location(uri: str) -> tuple[str, str]:
    """The bucket and the key prefix (ending in `/`) of an `s3://bucket/prefix/` URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"ingest log: {uri!r} is not an s3://bucket/prefix/ URI")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def write(s3: Any, uri: str, *, feature_group: str, records: list[Logged]) -> str:
    """One file for this ingest's records under `uri`; its key."""
    bucket, prefix = location(uri)
    now = datetime.now(UTC)
    key = f"{prefix}{now:%Y%m%dT%H%M%S}Z_{uuid.uuid4().hex[:16]}.json"
    body = {"feature_group": feature_group, "written_at": now.isoformat(), "records": [asdict(r) for r in records]}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
    return key


def read(s3: Any, uri: str, *, feature_group: str) -> list[Logged]:
    """Every record the log under `uri` holds for `feature_group`, file by file in the order they were written."""
    bucket, prefix = location(uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"].endswith(".json"))
    logged = []
    for key in keys:
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        if body.get("feature_group") != feature_group:
            continue
        logged += [Logged(str(r["source_ref"]), float(r["event_time"]), str(r["status"])) for r in body["records"]]
    return logged


def not_arrived(logged: Iterable[Logged], rows: Iterable[StoreRow]) -> list[str]:
    """The source_refs whose latest logged record is APPROVED and which the offline store holds at no event time as
    late as that record's: approved data that exists but that a run cannot see yet. Sorted."""
    latest: dict[str, Logged] = {}
    for record in logged:
        current = latest.get(record.source_ref)
        if current is None or record.event_time >= current.event_time:
            latest[record.source_ref] = record
    stored: dict[str, float] = {}
    for row in rows:
        at = row.order()[0]
        stored[row.source_ref] = max(stored.get(row.source_ref, -math.inf), at)
    return sorted(
        ref
        for ref, record in latest.items()
        if record.status == "APPROVED" and stored.get(ref, -math.inf) < record.event_time
    )

"""Waiting until the offline store holds what an ingest put in.

Feature Store writes PutRecord's data to the offline store in batches, "within 15 minutes" (feature-store-offline.html),
each record under the hour partition of its event time (`.../data/year=YYYY/month=MM/day=DD/hour=HH/`). The wait lists
only the partitions of the event times it put, reads each new parquet file once (two columns and the invocation
time), and is done when every (source_ref, event_time) it put is there, written for a call made since the ingest
began. The caller needs s3:ListBucket and s3:GetObject on the store's prefix (and DescribeFeatureGroup to find it).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.ingest_log import Logged, location

AWS_DELAY_MINUTES = 15  # "written into Amazon S3 within 15 minutes"
# a row counts when its call reached the service after the ingest began, less the clocks' possible disagreement
CLOCK_SKEW = timedelta(minutes=1)


def partition(at: datetime) -> str:
    """The hour partition of an event time, as Feature Store names it (sam_stack/offline_store.py writes the same)."""
    at = at.astimezone(UTC)
    return f"year={at:%Y}/month={at:%m}/day={at:%d}/hour={at:%H}"


@dataclass
class Arrivals:
    """What the offline store under `uri` shows of records put since `since`."""

    s3: Any
    uri: str
    since: datetime
    seen: set[tuple[str, float]] = field(default_factory=set)
    read_keys: set[str] = field(default_factory=set)

    def look(self, records: Iterable[Logged]) -> None:
        bucket, prefix = location(self.uri)
        hours = {partition(datetime.fromtimestamp(record.event_time, UTC)) for record in records}
        paginator = self.s3.get_paginator("list_objects_v2")
        for hour in sorted(hours):
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{hour}/"):
                for item in page.get("Contents", []):
                    if item["Key"].endswith(".parquet") and item["Key"] not in self.read_keys:
                        self._read(bucket, item["Key"])

    def _read(self, bucket: str, key: str) -> None:
        import pyarrow.parquet as pq

        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        columns = ["source_ref", "event_time", "api_invocation_time"]
        # pyarrow 21 pre-buffers an in-memory file on its IO pool, and then aborts the interpreter at exit about
        # one time in two ("terminate called without an active exception"); a file this small needs no pre-buffering
        table = pq.read_table(io.BytesIO(body), columns=columns, use_threads=False, pre_buffer=False)
        for row in table.to_pylist():
            invoked = row["api_invocation_time"]
            if invoked is None or invoked >= self.since - CLOCK_SKEW:
                self.seen.add((str(row["source_ref"]), float(row["event_time"])))
        self.read_keys.add(key)

    def missing(self, records: Iterable[Logged]) -> list[Logged]:
        return [record for record in records if (record.source_ref, record.event_time) not in self.seen]


def wait(
    arrivals: Arrivals,
    records: list[Logged],
    *,
    timeout: float,
    every: float = 2.0,
    say: Callable[[str], None] | None = None,
) -> list[Logged]:
    """Look again every `every` seconds until the offline store holds all of `records` or `timeout` seconds have
    passed, saying how many have arrived when that changes (and every ten looks); the records still missing."""
    started = time.monotonic()
    say = say or _print
    missing, shown, looks = records, -1, 0
    while True:
        arrivals.look(missing)
        missing = arrivals.missing(missing)
        waited = time.monotonic() - started
        if len(missing) != shown or looks % 10 == 0:
            say(
                f"offline store: {len(records) - len(missing)} of {len(records)} records written"
                f" (waited {waited:.0f} s of at most {timeout:.0f} s)"
            )
            shown = len(missing)
        if not missing or waited >= timeout:
            return missing
        looks += 1
        time.sleep(min(every, max(timeout - waited, 0.0)))


def _print(text: str) -> None:
    print(text, flush=True)


def missing_message(missing: list[Logged], *, total: int, uri: str, timeout: float) -> str:
    """What did not arrive in time, and that it still may: AWS documents the delay."""
    named = ", ".join(record.source_ref for record in missing[:10]) + (" ..." if len(missing) > 10 else "")
    return (
        f"the offline store ({uri}) does not hold {len(missing)} of the {total} records put after {timeout:.0f} s:"
        f" {named}. They are in the feature group; Feature Store writes PutRecord's data to the offline store in"
        f" batches, documented as within {AWS_DELAY_MINUTES} minutes. A run started before they arrive trains"
        " without them (its dataset report counts them): wait, then start it."
    )

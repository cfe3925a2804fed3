"""detector.ingest_log and detector.offline_arrival: which ingested records the offline store does not hold yet, and
where the wait looks for them (the partition Feature Store writes a record under, sam_stack/offline_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from detector.ingest_log import Logged, location, not_arrived
from detector.offline_arrival import partition
from detector.offline_store import StoreRow
from detector.preprocess import REPORT_FILE

from pipeline_def.names import DATASET_REPORT
from sam_stack import offline_store


def row(source_ref: str, event_time: float) -> StoreRow:
    return StoreRow({"source_ref": source_ref, "event_time": event_time, "status": "APPROVED"}, "f.parquet", 0)


def test_approved_records_newer_than_the_store_holds_are_not_arrived() -> None:
    logged = [
        Logged("s3://b/held.jpg", 10.0, "APPROVED"),  # the store holds this event time
        Logged("s3://b/missing.jpg", 10.0, "APPROVED"),  # the store holds nothing of it
        Logged("s3://b/updated.jpg", 20.0, "APPROVED"),  # the store holds an older version only
        Logged("s3://b/rejected.jpg", 10.0, "REJECTED"),  # not approved: nothing a run misses
        Logged("s3://b/withdrawn.jpg", 10.0, "APPROVED"),
        Logged("s3://b/withdrawn.jpg", 11.0, "REJECTED"),  # its latest record is a rejection
    ]
    rows = [row("s3://b/held.jpg", 10.0), row("s3://b/updated.jpg", 15.0), row("s3://b/other.jpg", 1.0)]

    assert not_arrived(logged, rows) == ["s3://b/missing.jpg", "s3://b/updated.jpg"]


def test_a_store_row_later_than_the_log_counts_as_arrived() -> None:
    assert not_arrived([Logged("s3://b/a.jpg", 10.0, "APPROVED")], [row("s3://b/a.jpg", 12.0)]) == []


def test_the_wait_looks_in_the_partition_feature_store_writes_the_event_time_under() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    assert partition(at) == offline_store.partition(at) == "year=2026/month=01/day=01/hour=22"
    assert partition(at.astimezone(UTC)) == partition(at)


def test_the_log_is_an_s3_prefix() -> None:
    assert location("s3://bucket/ingest-log/group") == ("bucket", "ingest-log/group/")
    assert location("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="'/tmp/log' is not an s3://bucket/prefix/ URI"):
        location("/tmp/log")


def test_the_control_plane_reads_the_report_preprocess_writes() -> None:
    assert REPORT_FILE == DATASET_REPORT

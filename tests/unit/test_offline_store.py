"""sam_stack/offline_store.py: the offline store as Feature Store writes it, its columns from template.yaml's
feature group (the image's reader is checked against the same definition in container/tests/test_preprocess.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sam_stack.offline_store import OfflineStore
from sam_stack.template import Template

WRITTEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_store_has_the_feature_groups_columns_and_types_then_the_three_it_adds() -> None:
    definitions = Template.load().resource("FeatureGroup")["Properties"]["FeatureDefinitions"]

    schema = OfflineStore.of_template().schema

    features = [d["FeatureName"] for d in definitions]
    assert schema.names == [*features, "write_time", "api_invocation_time", "is_deleted"]
    kinds = {"String": pa.string(), "Integral": pa.int64(), "Fractional": pa.float64()}
    assert all(schema.field(d["FeatureName"]).type == kinds[d["FeatureType"]] for d in definitions)
    assert schema.field("write_time").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("is_deleted").type == pa.bool_()


def test_a_file_lies_in_its_hours_partition_under_the_name_aws_documents(tmp_path: Path) -> None:
    # Given a record as PutRecord sends it (numbers as strings), written at 03:04:05 UTC (04:04:05 in UTC+1)
    record = {"source_ref": "s3://b/a.jpg", "image_width": "640", "event_time": "1767323045.5", "status": "APPROVED"}
    written = WRITTEN.astimezone(timezone(timedelta(hours=1)))

    path = OfflineStore.of_template().write(tmp_path, [record], written, deleted=True)

    # Then `year=/month=/day=/hour=/<time>Z_<16 random alphanumerics>.parquet`, in UTC
    relative = path.relative_to(tmp_path).as_posix()
    assert re.fullmatch(r"year=2026/month=01/day=02/hour=03/20260102T030405Z_[0-9A-Za-z]{16}\.parquet", relative)
    [row] = pq.read_table(path).to_pylist()
    assert (row["image_width"], row["event_time"], row["image_height"]) == (640, 1767323045.5, None)
    assert (row["write_time"], row["api_invocation_time"], row["is_deleted"]) == (WRITTEN, WRITTEN, True)


def test_records_go_under_their_event_times_hour_and_a_file_is_named_after_its_latest_event_time() -> None:
    # Given a batch written at 03:04:05 with records of 01:00:30, 01:59:59 and 02:30:00 (event time)
    store = OfflineStore.of_template()
    one, two = datetime(2026, 1, 2, 1, 0, 30, tzinfo=UTC), datetime(2026, 1, 2, 1, 59, 59, tzinfo=UTC)
    three = datetime(2026, 1, 2, 2, 30, tzinfo=UTC)
    records = [{"source_ref": str(at), "event_time": str(at.timestamp())} for at in (one, two, three)]

    split = store.partitions(records)

    # Then the batch makes one file per event-time hour, each named after the latest event time in it
    assert {hour: [r["source_ref"] for r in rows] for hour, rows in split.items()} == {
        "year=2026/month=01/day=02/hour=01": [str(one), str(two)],
        "year=2026/month=01/day=02/hour=02": [str(three)],
    }
    key = store.file_key(split["year=2026/month=01/day=02/hour=01"], WRITTEN)
    assert re.fullmatch(r"year=2026/month=01/day=02/hour=01/20260102T015959Z_[0-9a-z]{16}\.parquet", key)

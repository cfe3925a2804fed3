"""Writing a feature group's offline store as Feature Store writes it, from one definition of its columns: the group's
FeatureDefinitions (template.yaml's FeatureGroup, or what DescribeFeatureGroup answers) and the three columns the
store adds to every record: `write_time`, `api_invocation_time` and `is_deleted`.

Feature Store buffers what PutRecord sends and writes it in batches (AWS: "within 15 minutes"). A file holds records
of one event-time hour, under `<prefix>/year=YYYY/month=MM/day=DD/hour=HH/` of their event time, and is named after
the latest event time in it: `<YYYYMMDDTHHMMSS>Z_<16 random alphanumerics>.parquet`, as AWS documents the layout
("Records in the offline store are partitioned by event time into hourly partitions", feature-store-offline.html).
The local feature store writes its records with it, the tests and benchmarks their stores; the image only reads them
(detector/offline_store.py).

It needs only pyarrow and PyYAML, which both environments (.venv and container/.venv) have.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sam_stack.template import Template

FEATURE_TYPES = {"String": pa.string(), "Integral": pa.int64(), "Fractional": pa.float64()}
# what the store adds to each record, in the order it adds them
STORE_COLUMNS = (
    ("write_time", pa.timestamp("ms", tz="UTC")),
    ("api_invocation_time", pa.timestamp("ms", tz="UTC")),
    ("is_deleted", pa.bool_()),
)


@dataclass(frozen=True)
class OfflineStore:
    """The columns of a feature group's offline store: its features (name, FeatureType), then the store's own."""

    features: tuple[tuple[str, str], ...]
    event_time: str = "event_time"  # the group's EventTimeFeatureName: the files' partitions and names

    @classmethod
    def of(cls, definitions: Iterable[Mapping[str, Any]], event_time: str = "event_time") -> OfflineStore:
        """From FeatureDefinitions and EventTimeFeatureName, as CreateFeatureGroup takes them and
        DescribeFeatureGroup answers them."""
        return cls(tuple((d["FeatureName"], d["FeatureType"]) for d in definitions), event_time)

    @classmethod
    def of_template(cls, template: Template | None = None) -> OfflineStore:
        """The store of template.yaml's FeatureGroup."""
        group = (template or Template.load()).resource("FeatureGroup")["Properties"]
        return cls.of(group["FeatureDefinitions"], group["EventTimeFeatureName"])

    def event_at(self, record: Mapping[str, Any]) -> datetime | None:
        """The record's event time (seconds since the epoch, or ISO 8601 for a String feature), in UTC."""
        value = record.get(self.event_time)
        if value is None or value == "":
            return None
        if dict(self.features).get(self.event_time) == "String":
            return datetime.fromisoformat(str(value)).astimezone(UTC)
        return datetime.fromtimestamp(float(value), UTC)

    def file_key(self, records: Sequence[Mapping[str, Any]], written: datetime) -> str:
        """Where a file of `records` (of one event-time hour) goes: by its latest event time (`written` without
        one)."""
        times = [at for at in map(self.event_at, records) if at is not None]
        return file_key(max(times) if times else written)

    def partitions(self, records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
        """`records` by the event-time hour partition each belongs in, as Feature Store splits a batch into files."""
        split: dict[str, list[Mapping[str, Any]]] = {}
        for record in records:
            at = self.event_at(record)
            split.setdefault(partition(at) if at else "", []).append(record)
        return split

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.features) + tuple(name for name, _ in STORE_COLUMNS)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(name, FEATURE_TYPES[kind]) for name, kind in self.features] + list(STORE_COLUMNS))

    def table(self, records: Sequence[Mapping[str, Any]], written: datetime, *, deleted: bool = False) -> pa.Table:
        """`records` (feature values; numbers may be strings, as PutRecord sends them) as the store's rows. A record
        of a batch of calls carries its own `api_invocation_time` and `is_deleted`; others take `written` and
        `deleted`."""
        written = written.astimezone(UTC)
        rows = [
            {name: _typed(kind, record.get(name)) for name, kind in self.features}
            | {
                "write_time": written,
                "api_invocation_time": record.get("api_invocation_time", written),
                "is_deleted": record.get("is_deleted", deleted),
            }
            for record in records
        ]
        return pa.Table.from_pylist(rows, schema=self.schema)

    def parquet(self, records: Sequence[Mapping[str, Any]], written: datetime, *, deleted: bool = False) -> bytes:
        """One file's bytes; it belongs at `self.file_key(records, written)` under the store's prefix."""
        buffer = io.BytesIO()
        pq.write_table(self.table(records, written, deleted=deleted), buffer)
        return buffer.getvalue()

    def write(
        self, folder: Path, records: Sequence[Mapping[str, Any]], written: datetime, *, deleted: bool = False
    ) -> Path:
        """One file of `records` (of one event-time hour) in the store's layout under `folder` (a local copy of the
        prefix); its path."""
        path = folder / self.file_key(records, written)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.parquet(records, written, deleted=deleted))
        return path


def partition(at: datetime) -> str:
    """The hour partition of an event time: `year=YYYY/month=MM/day=DD/hour=HH` (UTC)."""
    at = at.astimezone(UTC)
    return f"year={at:%Y}/month={at:%m}/day={at:%d}/hour={at:%H}"


def file_key(latest: datetime) -> str:
    """Where a file whose latest event time is `latest` goes under the store's prefix: that hour's partition, and a
    name of that time."""
    latest = latest.astimezone(UTC)
    # AWS names a file with 16 random alphanumerics: a uuid's first 16 hex digits are as random as they need be
    return f"{partition(latest)}/{latest:%Y%m%dT%H%M%S}Z_{uuid.uuid4().hex[:16]}.parquet"


def _typed(kind: str, value: Any) -> Any:
    if value is None or kind == "String":
        return value
    if kind == "Fractional":
        return float(value)
    return value if isinstance(value, int) else int(float(value))

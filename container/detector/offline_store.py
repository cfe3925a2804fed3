"""Reading a feature group's offline store: the parquet files AWS writes under `.../data/year=/month=/day=/hour=/`.

Besides the features, each row carries `write_time`, `api_invocation_time` and `is_deleted`. A record id
(`source_ref`) can appear many times; its latest row by (event_time, write_time, api_invocation_time) wins.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from detector.records import FEATURES

STORE_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")


@dataclass(frozen=True)
class StoreRow:
    values: dict[str, Any]
    file: str
    row: int

    @property
    def source_ref(self) -> str:
        return str(self.values.get("source_ref") or "")

    def order(self) -> tuple[float, float, float]:
        return (
            _seconds(self.values.get("event_time")),
            _seconds(self.values.get("write_time")),
            _seconds(self.values.get("api_invocation_time")),
        )

    @property
    def deleted(self) -> bool:
        return bool(self.values.get("is_deleted"))


def _seconds(value: Any) -> float:
    if value is None:
        return -math.inf
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return -math.inf


def read_rows(folder: Path) -> list[StoreRow]:
    """Every row of every parquet file under `folder`, in a stable order (by path, then row)."""
    rows = []
    for file in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(file)
        columns = [name for name in (*FEATURES, *STORE_COLUMNS) if name in table.column_names]
        for index, values in enumerate(table.select(columns).to_pylist()):
            rows.append(StoreRow(values, str(file.relative_to(folder)), index))
    return rows


def latest(rows: list[StoreRow]) -> dict[str, StoreRow]:
    """The latest row per source_ref (the later file wins a tie, as a later write would)."""
    chosen: dict[str, StoreRow] = {}
    for row in rows:
        current = chosen.get(row.source_ref)
        if current is None or row.order() >= current.order():
            chosen[row.source_ref] = row
    return chosen


def write_rows(folder: Path, records: list[dict[str, Any]], written: datetime, deleted: bool = False) -> Path:
    """One parquet file of feature values in the offline store's layout and types; returns its path.

    `records` hold the feature values (strings are accepted for numbers, as PutRecord sends them).
    """
    import pyarrow as pa

    written = written.astimezone(UTC)
    columns: dict[str, list[Any]] = {name: [] for name in FEATURES}
    for record in records:
        for name in FEATURES:
            columns[name].append(record.get(name))
    schema = pa.schema(
        [
            ("source_ref", pa.string()),
            ("image_width", pa.int64()),
            ("image_height", pa.int64()),
            ("image_depth", pa.int64()),
            ("annotations", pa.string()),
            ("event_time", pa.float64()),
            ("labeling_job", pa.string()),
            ("status", pa.string()),
            ("write_time", pa.timestamp("ms", tz="UTC")),
            ("api_invocation_time", pa.timestamp("ms", tz="UTC")),
            ("is_deleted", pa.bool_()),
        ]
    )
    integers = ("image_width", "image_height", "image_depth")
    data = {
        **{name: [None if v is None else int(float(v)) for v in columns[name]] for name in integers},
        **{name: columns[name] for name in ("source_ref", "annotations", "labeling_job", "status")},
        "event_time": [None if v is None else float(v) for v in columns["event_time"]],
        "write_time": [written] * len(records),
        "api_invocation_time": [written] * len(records),
        "is_deleted": [deleted] * len(records),
    }
    partition = folder / f"year={written:%Y}" / f"month={written:%m}" / f"day={written:%d}" / f"hour={written:%H}"
    partition.mkdir(parents=True, exist_ok=True)
    path = partition / f"{written:%Y%m%dT%H%M%S}Z_{uuid.uuid4().hex[:16]}.parquet"
    pq.write_table(pa.table(data, schema=schema), path)
    return path

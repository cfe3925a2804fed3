"""Reading a feature group's offline store: the parquet files AWS writes under `.../data/year=/month=/day=/hour=/`.

Besides the features, each row carries `write_time`, `api_invocation_time` and `is_deleted`. A record id
(`source_ref`) can appear many times; its latest row by (event_time, write_time, api_invocation_time) wins.
The image only reads the store: Feature Store writes it (locally, and for the tests, sam_stack/offline_store.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
            seconds(self.values.get("event_time")),
            seconds(self.values.get("write_time")),
            seconds(self.values.get("api_invocation_time")),
        )

    @property
    def deleted(self) -> bool:
        return bool(self.values.get("is_deleted"))


def seconds(value: Any) -> float:
    """A time column's value as seconds since the epoch; -inf when it has none."""
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

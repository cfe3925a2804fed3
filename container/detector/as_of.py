"""A run's as-of time (the pipeline's DataAsOf): which offline-store rows and which image versions it reads.

The cut is on `write_time`, the time Feature Store wrote the row into the offline store, not on
`api_invocation_time` (when PutRecord was called) nor `event_time` (the record's own time, which the caller
chooses): the offline store receives PutRecord's data in batches, up to 15 minutes after the call, so a cut on the
call's time taken before that batch is written would hold rows a later rerun with the same as-of sees and an
earlier one did not. Every row with a write time at or before the as-of time was in the store at that time, and
nothing written later can ever change that set: the same as-of gives the same rows, however late the rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detector.manifest import timestamp
from detector.offline_store import StoreRow, seconds

WRITE_TIME_MISSING = "write_time: missing (the offline store writes it on every row): cannot tell whether it is as of"


class AsOfError(ValueError):
    """A DataAsOf that is not an ISO 8601 time with a UTC offset, or that lies in the future."""


def parse(text: str, now: datetime) -> datetime:
    """DataAsOf as a time in UTC: `now` (the job's start) when empty; AsOfError when malformed or later than `now`
    (a later one would let a retry see rows written since the first attempt)."""
    if not text:
        return now.astimezone(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise AsOfError(f"--data-as-of: {text!r} is not an ISO 8601 time (e.g. 2026-12-05T02:00:00Z)") from None
    if value.tzinfo is None:
        raise AsOfError(f"--data-as-of: {text!r} has no UTC offset (e.g. 2026-12-05T02:00:00Z)")
    if value > now:
        raise AsOfError(f"--data-as-of: {text} is after the job's start {iso(now)}")
    return value.astimezone(UTC)


def iso(at: datetime) -> str:
    """How the report writes the as-of time: ISO 8601, UTC, milliseconds (as the manifest writes times)."""
    return timestamp(at.timestamp())


def write_seconds(row: StoreRow) -> float | None:
    value = seconds(row.values.get("write_time"))
    return value if math.isfinite(value) else None


@dataclass
class Cut:
    """The rows as of a time: those written at or before it, those written after it (counted), and those without a
    write time (refused, each with its file and row)."""

    kept: list[StoreRow] = field(default_factory=list)
    written_after: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)


def cut(rows: list[StoreRow], as_of: datetime) -> Cut:
    limit = as_of.timestamp()
    result = Cut()
    for row in rows:
        written = write_seconds(row)
        if written is None:
            result.refused.append(
                {"source_ref": row.source_ref or None, "file": row.file, "row": row.row, "reason": WRITE_TIME_MISSING}
            )
        elif written <= limit:
            result.kept.append(row)
        else:
            result.written_after += 1
    return result

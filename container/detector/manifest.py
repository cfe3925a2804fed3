"""A run's dataset manifest: exactly what went into each split, one JSON line per image.

Each line names the record (`source_ref`), the image read (its S3 `version_id`, or null for a local path, and the
`sha256` of its bytes), the labels (`annotations_sha256`, over the boxes in a canonical form, so the order of boxes
does not count), where the labels came from (`labeling_job`), the record's `event_time` and the offline store's
`write_time` (ISO 8601, UTC, milliseconds) and the `split`. Lines are sorted by (split, source_ref) and written in
one canonical form, so the same data always gives the same bytes and the same digest, whatever the run; the as-of
time is not in it (the dataset report and the model's metadata carry that).

Preprocess writes it (`report/manifest.jsonl`); Evaluate puts its URI and digest in evaluation.json, Register in
the model package's metadata, and compares it with the champion's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from detector.records import Box

MANIFEST_FILE = "manifest.jsonl"
SPLITS = ("train", "validation", "test")


class ManifestError(ValueError):
    """A manifest that cannot be read: the message names the line and the field."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    split: str
    source_ref: str
    version_id: str | None
    sha256: str
    annotations_sha256: str
    boxes: int
    labeling_job: str
    event_time: str
    write_time: str

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def annotations_sha256(boxes: Iterable[Box]) -> str:
    """The labels' fingerprint: the boxes as (class_id, left, top, width, height), sorted, in canonical JSON."""
    canonical = sorted(
        [box.class_id, float(box.left), float(box.top), float(box.width), float(box.height)] for box in boxes
    )
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode("ascii")).hexdigest()


def timestamp(seconds: float) -> str:
    """Seconds since the epoch as the manifest writes times: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(entries: Iterable[Entry]) -> bytes:
    """The manifest's bytes: one canonical line per entry, sorted by (split, source_ref)."""
    ordered = sorted(entries, key=lambda entry: (SPLITS.index(entry.split), entry.source_ref))
    return "".join(entry.line() + "\n" for entry in ordered).encode("ascii")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


NAMES = tuple(field.name for field in fields(Entry))


def loads(data: bytes) -> list[Entry]:
    """The entries of a manifest's bytes; ManifestError naming the line (1-based) and what is wrong."""
    entries = []
    for number, text in enumerate(data.decode("utf-8").splitlines(), start=1):
        if text.strip():
            entries.append(_entry(text, number))
    return entries


def _entry(text: str, number: int) -> Entry:
    try:
        values: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"line {number}: not JSON ({error.msg})") from None
    if not isinstance(values, dict):
        raise ManifestError(f"line {number}: expected an object")
    missing = [name for name in NAMES if name not in values]
    if missing:
        raise ManifestError(f"line {number}: missing {', '.join(missing)}")
    if values["split"] not in SPLITS:
        raise ManifestError(f"line {number}: split {values['split']!r} is not one of {', '.join(SPLITS)}")
    return Entry(**{name: values[name] for name in NAMES})


def by_split(entries: Sequence[Entry]) -> dict[str, dict[str, Entry]]:
    """split -> source_ref -> entry."""
    grouped: dict[str, dict[str, Entry]] = {split: {} for split in SPLITS}
    for entry in entries:
        grouped[entry.split][entry.source_ref] = entry
    return grouped

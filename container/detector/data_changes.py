"""What changed in the data between two manifests (detector.manifest): the run's and the champion's.

Per split, against the same split then: the images `added` (in the split now, not then: new, or moved in from
another split), `removed` (then, not now), `relabelled` (the same source_ref, other annotations_sha256) and with
`pixels_changed` (the same source_ref, other sha256), and the split's `images` now and `champion_images` then.
The totals count each image once, whatever its split: `added` and `removed` are source_refs new or gone from the
whole dataset, `moved` those that changed split (so the per-split figures of a moved image do not sum to the
totals'). An image can be both relabelled and have changed pixels; it is counted in each.

`examples` names at most EXAMPLES source_refs of each kind (sorted by split, then source_ref), so that
evaluation.json stays small however much changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detector.manifest import SPLITS, Entry, by_split

EXAMPLES = 5
KINDS = ("added", "removed", "relabelled", "pixels_changed")
TOTAL_KINDS = ("added", "removed", "moved", "relabelled", "pixels_changed")


def _changed(now: dict[str, Entry], then: dict[str, Entry]) -> dict[str, list[str]]:
    """source_ref lists of each kind, between two {source_ref: entry} maps, sorted."""
    both = sorted(now.keys() & then.keys())
    return {
        "added": sorted(now.keys() - then.keys()),
        "removed": sorted(then.keys() - now.keys()),
        "relabelled": [ref for ref in both if now[ref].annotations_sha256 != then[ref].annotations_sha256],
        "pixels_changed": [ref for ref in both if now[ref].sha256 != then[ref].sha256],
    }


def compare(now: Sequence[Entry], then: Sequence[Entry], *, champion_version: int) -> dict[str, Any]:
    """`splits`, `totals` and `examples` of the changes from `then` (the champion's manifest) to `now`."""
    grouped_now, grouped_then = by_split(now), by_split(then)
    splits: dict[str, dict[str, int]] = {}
    examples: dict[str, list[str]] = {kind: [] for kind in TOTAL_KINDS}
    for split in SPLITS:
        changed = _changed(grouped_now[split], grouped_then[split])
        splits[split] = {
            **{kind: len(changed[kind]) for kind in KINDS},
            "images": len(grouped_now[split]),
            "champion_images": len(grouped_then[split]),
        }
    every_now = {entry.source_ref: entry for entry in now}
    every_then = {entry.source_ref: entry for entry in then}
    changed = _changed(every_now, every_then)
    changed["moved"] = sorted(
        ref for ref in every_now.keys() & every_then.keys() if every_now[ref].split != every_then[ref].split
    )
    order = {ref: (SPLITS.index(entry.split), ref) for ref, entry in {**every_then, **every_now}.items()}
    for kind in TOTAL_KINDS:
        examples[kind] = sorted(changed[kind], key=order.__getitem__)[:EXAMPLES]
    totals = {
        **{kind: len(changed[kind]) for kind in TOTAL_KINDS},
        "images": len(every_now),
        "champion_images": len(every_then),
    }
    return {"champion_version": champion_version, "splits": splits, "totals": totals, "examples": examples}


def absent(champion_version: int | None, reason: str) -> dict[str, Any]:
    """Why there is no comparison: no champion, a champion without a manifest, or one that cannot be read."""
    return {"champion_version": champion_version, "absent": reason}

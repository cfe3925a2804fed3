"""What changed in the data since the champion, as people read it: Evaluate's `data_changes` (evaluation.json) as
GET /runs/{id} answers it, and the one line the approval request and `scratch-detector runs show` print, e.g.
`Data since v3: +1 image, 1 relabelled, 0 removed (train +1, test 1 relabelled); 41 images (v3: 40)`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from control_plane.models import DataChanges, SplitChanges

SPLITS = ("train", "validation", "test")


def from_evaluation(evaluation: dict[str, Any] | None) -> DataChanges | None:
    """The run's data changes with their summary; None when its evaluation has none (not evaluated, or by an Evaluate
    that did not compare data yet)."""
    raw = (evaluation or {}).get("data_changes")
    if raw is None:
        return None
    try:
        found = DataChanges.model_validate(raw)
    except ValidationError as error:
        found = DataChanges(absent=f"evaluation.json's data_changes is not what Evaluate writes ({error.error_count()}"
                            " problems)")  # fmt: skip
    return found.model_copy(update={"summary": summary(found)})


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _split_part(name: str, split: SplitChanges) -> str | None:
    """`train +1 -2 1 relabelled 1 with new pixels`, or None for a split where nothing changed."""
    terms = [f"+{split.added}" if split.added else "", f"-{split.removed}" if split.removed else ""]
    terms += [f"{split.relabelled} relabelled" if split.relabelled else ""]
    terms += [f"{split.pixels_changed} with new pixels" if split.pixels_changed else ""]
    shown = " ".join(term for term in terms if term)
    return f"{name} {shown}" if shown else None


def summary(changes: DataChanges) -> str:
    since = f"v{changes.champion_version}" if changes.champion_version is not None else "the champion"
    totals = changes.totals
    if changes.absent is not None or totals is None:
        return f"Data since {since}: not compared ({changes.absent or 'no figures'})"
    sizes = f"{_plural(totals.images, 'image')} ({since}: {totals.champion_images})"
    head = [f"+{_plural(totals.added, 'image')}", f"{totals.relabelled} relabelled", f"{totals.removed} removed"]
    head += [f"{totals.pixels_changed} with new pixels"] if totals.pixels_changed else []
    head += [f"{totals.moved} moved to another split"] if totals.moved else []
    found = [(name, changes.splits[name]) for name in SPLITS if name in changes.splits]
    parts = [part for name, split in found if (part := _split_part(name, split))]
    if not parts and not totals.moved:
        return f"Data since {since}: unchanged, {sizes}"
    where = f" ({', '.join(parts)})" if parts else ""
    return f"Data since {since}: {', '.join(head)}{where}; {sizes}"

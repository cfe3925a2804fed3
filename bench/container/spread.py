"""Mean and spread over seeds, and when a difference between two recipes is shown.

A recipe's figure is the mean over its seeds, with the sample standard deviation (n - 1) and the standard error of
the mean. Two recipes differ by the difference of their means, whose standard error is Welch's,
sqrt(sA^2/nA + sB^2/nB); a recipe counts as better only when the difference exceeds twice that standard error.
One seed has no spread: then nothing can be shown, and the verdict says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NO_DIFFERENCE = "no difference shown at this many seeds"
NO_SPREAD = "no spread with one seed (or an unseeded run): no difference can be shown"


@dataclass(frozen=True)
class Summary:
    """n figures: their mean, sample standard deviation and standard error (None below two figures)."""

    n: int
    mean: float | None
    sd: float | None
    se: float | None


def summarize(values: Sequence[float | None]) -> Summary:
    """The summary of the figures that exist (a run that did not produce one, such as an old revision's missing
    validation F1, is left out, and n says how many counted)."""
    present = [value for value in values if value is not None]
    if not present:
        return Summary(0, None, None, None)
    mean = statistics.fmean(present)
    if len(present) < 2:
        return Summary(len(present), mean, None, None)
    sd = statistics.stdev(present)  # n - 1
    return Summary(len(present), mean, sd, sd / math.sqrt(len(present)))


@dataclass(frozen=True)
class Difference:
    """`ours` - `theirs` in means, Welch's standard error of it (None when either has no spread), and the verdict."""

    delta: float | None
    se: float | None
    verdict: str


def difference(ours: Summary, theirs: Summary) -> Difference:
    if ours.mean is None or theirs.mean is None:
        return Difference(None, None, "not measured on both sides")
    delta = ours.mean - theirs.mean
    if ours.sd is None or theirs.sd is None:
        return Difference(delta, None, NO_SPREAD)
    se = math.sqrt(ours.sd**2 / ours.n + theirs.sd**2 / theirs.n)
    if abs(delta) > 2 * se:
        return Difference(delta, se, f"{'better' if delta > 0 else 'worse'} (beyond twice its standard error)")
    return Difference(delta, se, NO_DIFFERENCE)


def describe(summary: Summary, digits: int = 4) -> str:
    """`mean 0.8000 sd 0.0500 se 0.0289 (n=3)`, or what is missing."""
    if summary.mean is None:
        return "n/a"
    if summary.sd is None or summary.se is None:
        return f"mean {summary.mean:.{digits}f} (n={summary.n}: no spread)"
    return f"mean {summary.mean:.{digits}f} sd {summary.sd:.{digits}f} se {summary.se:.{digits}f} (n={summary.n})"


def describe_difference(found: Difference) -> str:
    if found.delta is None:
        return found.verdict
    if found.se is None:
        return f"{found.delta:+.4f}: {found.verdict}"
    return f"{found.delta:+.4f} (SE {found.se:.4f}, Welch; 2 SE = {2 * found.se:.4f}): {found.verdict}"

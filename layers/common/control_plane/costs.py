"""What a run's jobs used and an estimate of what they cost: instance-seconds from DescribeTrainingJob and
DescribeProcessingJob, priced from the config's table of on-demand list prices (pipeline_def.config.PricingSettings).

SageMaker bills a training job's BillableTimeInSeconds on each of its InstanceCount instances, and a processing job
per second from its start to its end on each instance. A managed spot training job is billed at the spot price,
which AWS does not publish as a fixed figure, so its estimate here uses the on-demand price: an upper bound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from control_plane.models import JobUsage, RunCost

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, kw_only=True)
class PriceTable:
    """On-demand prices per instance-hour of one region on one date (the config's `pricing`)."""

    region: str
    as_of: date
    currency: str
    per_hour: dict[str, float]


def _cost(usage: JobUsage, prices: PriceTable | None) -> tuple[float | None, str]:
    """The estimate and what it rests on, or None and why there is none."""
    if usage.billable_seconds is None:
        return None, "no cost yet: SageMaker reports the billable time when the job ends"
    if prices is None:
        return None, "no cost: the pipeline config (its pricing table) could not be read"
    price = prices.per_hour.get(usage.instance_type)
    if price is None:
        return None, f"no cost: the config's pricing table has no price for {usage.instance_type}"
    amount = usage.billable_seconds * usage.instance_count * price / SECONDS_PER_HOUR
    basis = (
        f"{usage.billable_seconds} s x {usage.instance_count} {usage.instance_type} at the on-demand "
        f"{price} {prices.currency}/h ({prices.region}, {prices.as_of.isoformat()})"
    )
    if usage.spot:
        basis += "; an upper bound: spot time is billed at the spot price, which AWS does not publish as fixed"
    return round(amount, 6), basis


def training_usage(job: dict[str, Any], prices: PriceTable | None) -> JobUsage:
    """A training job's instances, billable and training seconds, spot saving and estimated cost."""
    resources = job.get("ResourceConfig", {})
    billable, training = job.get("BillableTimeInSeconds"), job.get("TrainingTimeInSeconds")
    spot = bool(job.get("EnableManagedSpotTraining"))
    # AWS's own formula for managed spot training's saving
    saving = round(1 - billable / training, 4) if spot and billable is not None and training else None
    usage = JobUsage(
        instance_type=resources.get("InstanceType", "unknown"),
        instance_count=int(resources.get("InstanceCount", 1)),
        billable_seconds=billable,
        training_seconds=training,
        spot=spot,
        spot_saving=saving,
    )
    return _priced(usage, prices)


def processing_usage(job: dict[str, Any], prices: PriceTable | None) -> JobUsage:
    """A processing job's instances, its seconds from start to end, and estimated cost."""
    cluster = job.get("ProcessingResources", {}).get("ClusterConfig", {})
    started, ended = job.get("ProcessingStartTime"), job.get("ProcessingEndTime")
    usage = JobUsage(
        instance_type=cluster.get("InstanceType", "unknown"),
        instance_count=int(cluster.get("InstanceCount", 1)),
        billable_seconds=_seconds(started, ended),
    )
    return _priced(usage, prices)


def _seconds(started: datetime | None, ended: datetime | None) -> int | None:
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds()))


def _priced(usage: JobUsage, prices: PriceTable | None) -> JobUsage:
    amount, basis = _cost(usage, prices)
    return usage.model_copy(update={"estimated_cost": amount, "cost_basis": basis})


def run_cost(usages: list[JobUsage], prices: PriceTable | None) -> RunCost:
    """The sum of the jobs' estimates; `complete` only when every job has one."""
    known = [u.estimated_cost for u in usages if u.estimated_cost is not None]
    missing = [u.cost_basis for u in usages if u.estimated_cost is None]
    return RunCost(
        estimated=round(sum(known), 6) if known else None,
        currency=prices.currency if prices else "USD",
        region=prices.region if prices else None,
        as_of=prices.as_of if prices else None,
        complete=bool(usages) and not missing,
        upper_bound=any(u.spot and u.estimated_cost is not None for u in usages),
        unpriced=[m for m in missing if m],
    )


def cost_line(cost: RunCost | None) -> str:
    """One line for a person: the estimate, what it leaves out and what it is."""
    if cost is None or cost.estimated is None:
        reason = cost.unpriced[0] if cost and cost.unpriced else "no job has a cost yet"
        return f"estimated cost unknown ({reason})"
    text = f"about {cost.estimated:.2f} {cost.currency}"
    notes = [f"on-demand list prices, {cost.region}, {cost.as_of}"]
    if cost.upper_bound:
        notes.append("spot training priced on demand, so at most this")
    if not cost.complete:
        notes.append(f"{len(cost.unpriced)} job(s) without a price")
    return f"{text} ({'; '.join(notes)})"

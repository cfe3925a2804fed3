"""The API's answers as a person reads them: rich tables, one key-value table per object, and the lines `runs follow`
prints. `--json` bypasses all of this and prints the API's JSON as it came."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

RUN_COLUMNS = ("run_id", "status", "display_name", "started")
MODEL_COLUMNS = ("version", "approval_status", "map", "run_id", "created")
AUDIT_COLUMNS = ("at", "action", "actor", "source", "subject", "details")


def cell(value: Any) -> str:
    """One value as a table cell: nothing for None, 3 decimals for a float, `k=v` pairs for a mapping."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={{{cell(v)}}}" if isinstance(v, dict) else f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value)


def rows(items: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str | None = None) -> Table:
    table = Table(*columns, title=title)
    for item in items:
        table.add_row(*(cell(item.get(column)) for column in columns))
    return table


def fields(item: dict[str, Any], *, title: str | None = None) -> Table:
    """One object as a two-column table: its fields, except those that are nested lists (shown apart)."""
    table = Table("field", "value", title=title, show_header=False)
    for key, value in item.items():
        if not (isinstance(value, list) and value and isinstance(value[0], dict)):
            table.add_row(key, cell(value))
    return table


def page(answer: dict[str, Any], key: str, columns: Sequence[str]) -> list[Table]:
    tables = [rows(answer.get(key, []), columns, title=key)]
    if answer.get("next_token"):
        tables.append(fields({"next_token": answer["next_token"]}))
    return tables


STEP_COLUMNS = ("name", "status", "started", "ended", "cache_hit", "failure_reason")


def run_detail(detail: dict[str, Any]) -> list[Table]:
    steps = [{**s, "cost": (s.get("job") or {}).get("estimated_cost")} for s in detail.get("steps", [])]
    shown = {**detail, "data_changes": data_changes_text(detail.get("data_changes"))}
    return [fields(shown, title=f"run {detail.get('run_id')}"), rows(steps, (*STEP_COLUMNS, "cost"), title="steps")]


def data_changes_text(changes: dict[str, Any] | None) -> str | None:
    """The API's summary line, and the example images of each kind of change."""
    if not changes:
        return None
    examples = [f"{kind}: {', '.join(refs)}" for kind, refs in (changes.get("examples") or {}).items() if refs]
    return "\n".join([str(changes.get("summary", "")), *examples])


def model_detail(model: dict[str, Any]) -> list[Table]:
    dataset = model.get("dataset") or {"manifest_uri": "none: registered before its runs pinned their data"}
    return [
        fields(
            {key: value for key, value in model.items() if key != "dataset"}, title=f"model v{model.get('version')}"
        ),
        fields(dataset, title="dataset (what it learned from)"),
        rows(model.get("decisions", []), ("at", "decision", "actor", "source", "comment"), title="decisions"),
    ]


def print_tables(console: Console, tables: Sequence[Table]) -> None:
    for table in tables:
        console.print(table)


def test_map(detail: dict[str, Any]) -> float | None:
    """The run's test mAP: its evaluation's, else its model's."""
    value = ((detail.get("evaluation") or {}).get("metrics") or {}).get("map", {}).get("value")
    if value is None:
        value = (detail.get("model") or {}).get("map")
    return None if value is None else float(value)


def result_lines(detail: dict[str, Any]) -> list[str]:
    """How a run ended: status, mAP, model, cost and links."""
    lines = [f"run            {detail['run_id']} {detail['status']}"]
    if detail.get("failure_reason"):
        lines.append(f"reason         {detail['failure_reason']}")
    found = test_map(detail)
    lines.append(f"test mAP       {found:.3f}" if found is not None else "test mAP       none")
    model = detail.get("model")
    if model:
        lines.append(f"model          v{model['version']} {model['approval_status']} ({model['arn']})")
    lines.append(f"cost           {cost_text(detail.get('cost'))}")
    lines += [f"link           {name}: {url}" for name, url in links(detail)]
    return lines


def cost_text(cost: dict[str, Any] | None) -> str:
    if not cost or cost.get("estimated") is None:
        return "no estimate" + (f" ({'; '.join(cost['unpriced'])})" if cost and cost.get("unpriced") else "")
    bound = "at most " if cost.get("upper_bound") else "about "
    basis = f", {cost['region']} on-demand list prices of {cost['as_of']}" if cost.get("region") else ""
    partial = "" if cost.get("complete") else " (not every job priced)"
    amount = float(cost["estimated"])
    # a tiny run costs fractions of a cent
    digits = 2 if amount >= 0.01 else 4
    return f"{bound}{amount:.{digits}f} {cost.get('currency', 'USD')}{basis}{partial}"


def links(detail: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(f"{s['name']} logs", str(s["logs_url"])) for s in detail.get("steps", []) if s.get("logs_url")]
    artefacts = detail.get("artefacts") or {}
    found += [(k, str(v)) for k, v in artefacts.items() if k != "expires_at" and v]
    return found


@dataclass
class Watcher:
    """What changed since the last answer of GET /runs/{id}: a line per step whose status changed, one per epoch
    line of an executing Train step (`epoch 9/19  ...  about 4 min left`), and one when the training job's final
    metrics appeared or changed."""

    say: Callable[[str], None]
    # make run prints each epoch from the job's own log instead (local/run.py)
    training_metrics: bool = True
    steps: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    progress: str | None = None

    def __call__(self, detail: dict[str, Any]) -> None:
        for step in detail.get("steps", []):
            if self.steps.get(step["name"]) != step["status"]:
                self.steps[step["name"]] = step["status"]
                reason = f": {step['failure_reason']}" if step.get("failure_reason") else ""
                self.say(f"{step['name']} {step['status']}{reason}")
        progress = (detail.get("progress") or {}).get("text")
        if self.training_metrics and progress and progress != self.progress:
            self.progress = progress
            self.say(f"  Train  {progress}")
        latest = detail.get("training_metrics") or {}
        if self.training_metrics and latest and latest != self.metrics:
            self.metrics = dict(latest)
            self.say(f"  Train  {metrics_text(latest)}")


def metrics_text(latest: dict[str, float]) -> str:
    loss = sum(v for k, v in latest.items() if k.startswith("train:") and k.endswith("_loss"))
    text = f"loss {loss:.3f}"
    if "validation:map" in latest:
        text += f"  val mAP {latest['validation:map']:.3f}"
    if "train:images_per_second" in latest:
        text += f"  ({latest['train:images_per_second']:.1f} img/s)"
    return text

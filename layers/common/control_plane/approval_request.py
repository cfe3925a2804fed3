"""The Slack approval request: a registered model with the evidence a person decides on (its test figures beside
the approved model's on the same images, the data it learnt from, its training, its run, its predictions picture)
and the Approve/Reject buttons; after a decision, the same message with the decision in place of the buttons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from control_plane import data_changes
from control_plane.models import DecisionResult, ModelSummary, Origin
from control_plane.service_text import clip
from control_plane.slack_messages import section, shown

APPROVE, REJECT = "approve", "reject"
DECISION_BLOCK = "decision"
# the request names one example source_ref of each kind of change (Evaluate keeps a few), cut so that the section
# stays within Slack's 3000 characters
EXAMPLE_LENGTH = 120


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What the request shows besides the package: evaluation.json, the run's link, the uploaded picture."""

    evaluation: dict[str, Any] | None = None
    run_url: str | None = None
    picture_file_id: str | None = None
    # why there is no picture, when there is none
    picture_problem: str | None = None
    # who started the run (the approver should not be the same person: model_registry.four_eyes)
    started_by: Origin | None = None
    # Preprocess's dataset_report.json: what the run trained on, and the approved records it could not see yet
    dataset: dict[str, Any] | None = None
    # the run's estimated cost (control_plane.costs.cost_line); None: not shown
    cost: str | None = None


def button_value(group: str, version: int) -> str:
    return json.dumps({"group": group, "version": version}, sort_keys=True)


def _figure(value: Any, digits: int = 3) -> str:
    return "unknown" if value is None else f"{float(value):.{digits}f}"


def _comparison(evaluation: dict[str, Any], score: str) -> str:
    champion = evaluation.get("champion") or {}
    if not champion:
        return "no comparison (evaluated before champions were scored)"
    if not champion.get("present"):
        version = f" v{champion['version']}" if champion.get("version") else ""
        return f"no champion{version} to compare with: {champion.get('reason', 'unknown')}"
    difference = (evaluation.get("comparison") or {}).get("map_difference")
    sign = "" if difference is None else f" ({float(difference):+.3f})"
    return (
        f"{score} against champion v{champion.get('version')}'s {_figure(champion.get('map'))} on the same images"
        f"{sign}; the champion's precision {_figure(champion.get('precision'), 2)}, "
        f"recall {_figure(champion.get('recall'), 2)}"
    )


def _evidence_lines(evaluation: dict[str, Any]) -> list[str]:
    counts, model = evaluation.get("counts") or {}, evaluation.get("model") or {}
    per_class = (evaluation.get("per_class") or {}).values()
    found = sum(int(c.get("true_positives", 0)) for c in per_class)
    false = sum(int(c.get("false_positives", 0)) for c in per_class)
    nms = evaluation.get("nms_threshold")
    baked = "" if nms is None else f", NMS IoU {_figure(nms, 2)}"  # an evaluation from before the choice: none
    lines = [
        f"*at score ≥ {_figure(evaluation.get('score_threshold'))}{baked}:* precision "
        f"{_figure(evaluation.get('precision'), 2)}, recall {_figure(evaluation.get('recall'), 2)} "
        f"({found} of {counts.get('boxes', '?')} scratches found, {false} false detections)",
        f"*images:* {model.get('train_images', '?')} train / {model.get('validation_images', '?')} validation / "
        f"{counts.get('images', '?')} test",
    ]
    seconds = model.get("training_seconds")
    duration = "unknown time" if seconds is None else f"{float(seconds) / 60:.1f} min"
    lines.append(
        f"*training:* {duration}, best epoch {model.get('best_epoch', '?')} of {model.get('epochs', '?')} "
        f"(validation mAP {_figure(model.get('best_val_map'))})"
    )
    return lines


def _pinned_line(evaluation: dict[str, Any]) -> list[str]:
    """The data the model learned from: its as-of time and the start of its manifest's digest (the whole of both
    is in the model package's metadata and GET /models/{version})."""
    dataset = evaluation.get("dataset") or {}
    if not dataset.get("as_of") or not dataset.get("manifest_sha256"):
        return []
    return [
        f"*data:* as of {shown(str(dataset['as_of']))}, manifest sha256 `{shown(str(dataset['manifest_sha256']))[:12]}`"
    ]


def _data_change_lines(evaluation: dict[str, Any]) -> list[str]:
    """The data it learned from, what changed in it since the champion, and an image of each kind of change."""
    changes = data_changes.from_evaluation(evaluation)
    if changes is None:
        return _pinned_line(evaluation)
    named = [(kind, refs[0]) for kind, refs in changes.examples.items() if refs]
    lines = [*_pinned_line(evaluation), shown(changes.summary)]
    if named:
        lines.append("e.g. " + ", ".join(f"{kind} `{shown(clip(ref, EXAMPLE_LENGTH))}`" for kind, ref in named))
    return lines


def _missed_lines(dataset: dict[str, Any] | None) -> list[str]:
    """A warning when the run started before the offline store held every approved record ingested."""
    missed = ((dataset or {}).get("not_in_offline_store") or {}).get("approved_records")
    if not missed:
        return []
    return [
        f"*data:* trained without {missed} approved records that were ingested but not in the offline store yet"
        " (Feature Store writes it within 15 minutes of ingest); a run started now would see them"
    ]


def model_registered(
    group: str, model: ModelSummary, *, threshold: str | None, evidence: Evidence
) -> tuple[str, list[dict[str, Any]]]:
    score = _figure(model.map)
    bar = f" (threshold {threshold})" if threshold else ""
    evaluation = evidence.evaluation
    compared = _comparison(evaluation, score) if evaluation else "no evaluation report"
    run = f"<{evidence.run_url}|{model.run_id}>" if evidence.run_url else f"`{model.run_id}`"
    text = (
        f"Model {group} v{model.version} is waiting for approval: test mAP@0.5 {score}{bar}; {compared}; "
        f"run {model.run_id}"
    )
    lines = [f"*{group} v{model.version}* is waiting for approval", f"*test mAP@0.5:* {score}{bar}", compared]
    if evaluation:
        lines += _evidence_lines(evaluation) + _data_change_lines(evaluation)
    lines += _missed_lines(evidence.dataset)
    lines.append(f"*run:* {run}")
    if evidence.cost:
        lines.append(f"*estimated cost:* {evidence.cost}")
    if evidence.started_by is not None:
        origin = evidence.started_by
        lines.append(f"*started by:* `{shown(origin.actor)}` ({origin.source})")
    blocks: list[dict[str, Any]] = [section("\n".join(lines))]
    if evidence.picture_file_id:
        blocks.append(
            {
                "type": "image",
                "slack_file": {"id": evidence.picture_file_id},
                "alt_text": f"{group} v{model.version}: test images, labelled scratches green, detections red",
                "title": {"type": "plain_text", "text": "Test predictions (green: labelled, red: detected)"},
            }
        )
    elif evidence.picture_problem:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": evidence.picture_problem}]})
    blocks.append(_buttons(group, model.version))
    return text, blocks


def _buttons(group: str, version: int) -> dict[str, Any]:
    value = button_value(group, version)
    return {
        "type": "actions",
        "block_id": DECISION_BLOCK,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE,
                "style": "primary",
                "value": value,
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": REJECT,
                "style": "danger",
                "value": value,
                "text": {"type": "plain_text", "text": "Reject"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Reject this model?"},
                    "text": {"type": "plain_text", "text": f"{group} v{version} will be rejected."},
                    "confirm": {"type": "plain_text", "text": "Reject"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
        ],
    }


def decided(
    group: str, result: DecisionResult, user_id: str, *, original: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The request after a decision: its evidence as it was, the decision where the buttons were."""
    verb = {"Approved": ":white_check_mark: approved", "Rejected": ":no_entry: rejected"}.get(
        result.approval_status, result.approval_status
    )
    note = "" if result.changed else " (it already was)"
    text = f"{group} v{result.version} {verb} by <@{user_id}>{note}"
    kept = [block for block in original or [] if block.get("block_id") != DECISION_BLOCK]
    return text, [*kept, section(text)]

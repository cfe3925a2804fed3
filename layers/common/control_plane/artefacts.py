"""Links to a run's results: its two pictures, its evaluation report and its model archive, presigned for a
short while so that a person can open them without AWS credentials of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.models import Artefacts
from control_plane.ports import ArtefactPort
from pipeline_def.names import CURVES_FILE, EVALUATION_FILE, PREDICTIONS_FILE


def folder_of(uri: str) -> str:
    """s3://bucket/a/b/evaluation.json -> s3://bucket/a/b"""
    return uri.rsplit("/", 1)[0]


def links(evaluation_folder: str | None, model_archive: str | None, presigner: ArtefactPort) -> Artefacts | None:
    """What exists of a run's results, presigned; None when the run has produced none yet."""
    if not evaluation_folder and not model_archive:
        return None
    expires = datetime.now(UTC) + timedelta(seconds=presigner.expires_seconds)
    folder = evaluation_folder.rstrip("/") if evaluation_folder else None
    return Artefacts(
        expires_at=expires,
        predictions_png=presigner.presign(f"{folder}/{PREDICTIONS_FILE}") if folder else None,
        training_curves_png=presigner.presign(f"{folder}/{CURVES_FILE}") if folder else None,
        evaluation_json=presigner.presign(f"{folder}/{EVALUATION_FILE}") if folder else None,
        model_archive=presigner.presign(model_archive) if model_archive else None,
    )

"""The champion: the approved model the new one would replace, read from the registry, scored on the same test
images at its own shape and threshold, the comparison the pipeline's condition reads, and what changed in the data
since it (its manifest, named by its model package's `DataManifest` metadata, against the run's). Nothing here fails
the job: a champion, or a manifest, that cannot be fetched or read is reported absent, with the reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from detector import data_changes, jobs, manifest
from detector.scoring import Counting, load_model, score

log = logging.getLogger("detector.evaluate")

CHAMPION_ARCHIVE = "champion.tar.gz"
REASON_LENGTH = 300
NO_CHAMPION = "no approved model in the group"
# the model package metadata that names the manifest of the data it learnt from, and its digest (Register writes them)
DATA_MANIFEST, DATA_MANIFEST_SHA256 = "DataManifest", "DataManifestSha256"


@dataclass(frozen=True)
class Champion:
    """The registry's champion: its archive, its version, its data manifest's URI and that manifest's sha256 (each
    None when it has none)."""

    model: str | None = None
    version: str | None = None
    manifest: str | None = None
    manifest_sha256: str | None = None


def reason_of(error: Exception) -> str:
    """An exception as one bounded line, for evaluation.json."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:REASON_LENGTH]


def fetch_champion(location: str, destination: Path) -> Path:
    """The champion's archive: downloaded from S3, or a local path."""
    if not location.startswith("s3://"):
        return Path(location)
    import boto3

    parsed = urlparse(location)
    boto3.client("s3").download_file(parsed.netloc, parsed.path.lstrip("/"), str(destination))
    return destination


def read_bytes(location: str) -> bytes:
    """A small object's bytes: from S3, or a local path."""
    if not location.startswith("s3://"):
        return Path(location).read_bytes()
    import boto3

    parsed = urlparse(location)
    body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
    return bytes(body.read())


def registry_champion(group: str) -> Champion:
    """The group's newest Approved version (its archive, version and data manifest), as the control plane reads it;
    an empty Champion when there is none. A version approved and later rejected no longer counts."""
    import boto3

    sagemaker = boto3.client("sagemaker")
    found = sagemaker.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]  # fmt: skip
    if not found:
        return Champion()
    package = sagemaker.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = containers[0].get("ModelDataUrl") if containers else None
    if not url:
        return Champion()
    metadata = package.get("CustomerMetadataProperties", {})
    return Champion(
        str(url), str(package["ModelPackageVersion"]), metadata.get(DATA_MANIFEST), metadata.get(DATA_MANIFEST_SHA256)
    )


def champion_entry(
    test_set: Any,
    counting: Counting,
    *,
    location: str | None,
    version: str | None,
    classes: tuple[str, ...],
    folder: Path,
) -> dict[str, Any]:
    """The champion's figures on the same test split, or why there are none. Nothing here fails the job."""
    entry: dict[str, Any] = {"version": version or None, "model_data_url": location}
    if not location:
        return {**entry, "present": False, "reason": NO_CHAMPION}
    try:
        archive = fetch_champion(location, folder / CHAMPION_ARCHIVE)
        nets, meta = load_model(archive, folder / "champion")
        if tuple(meta["classes"]) != classes:
            raise jobs.JobError(f"it detects {', '.join(meta['classes'])}, not {', '.join(classes)}")
        scores = score(nets, meta, test_set, counting=counting)
    except Exception as error:
        reason = reason_of(error)
        jobs.event(log, "champion absent", version=version, reason=reason)
        return {**entry, "present": False, "reason": reason}
    jobs.event(log, "champion evaluated", version=version, map=scores.map)
    return {
        **entry,
        "present": True,
        "map": scores.map,
        "per_class": {
            name: {key: figures[key] for key in ("ap", "precision", "recall")}
            for name, figures in scores.per_class.items()
        },
        "precision": scores.precision,
        "recall": scores.recall,
        "score_threshold": scores.threshold,
        "score_threshold_source": scores.source,
        "nms_threshold": scores.nms_threshold,
        "nms_threshold_source": scores.nms_source,
        "map_at_model_nms": scores.map_at_model_nms,
        "data_shape": {"width": scores.width, "height": scores.height},
        "model": {key: meta.get(key) for key in ("backbone", "best_epoch", "epochs")},
    }


def comparison(new_map: float, champion: dict[str, Any], min_improvement: float | None) -> dict[str, Any]:
    """The difference, the mAP the condition asks for and a line with both figures for the Fail message (every
    value present whatever happened to the champion, so that the pipeline can always read them)."""
    present = bool(champion["present"])
    champion_map = float(champion["map"]) if present else 0.0
    version = str(champion["version"]) if champion["version"] else "none"
    if not present:
        required, summary = 0.0, f"no champion: {champion['reason']}"
    elif min_improvement is None:
        required, summary = 0.0, f"champion v{version} test mAP {champion_map}"
    else:
        required = round(champion_map + min_improvement, 6)
        summary = f"champion v{version} test mAP {champion_map} + min_improvement {min_improvement} = {required}"
    return {
        "champion_version": version if present else "none",
        "champion_map": champion_map,
        "map_difference": round(new_map - champion_map, 6) if present else None,
        "min_improvement": min_improvement,
        "required_map": required,
        "summary": summary,
    }


def data_changes_since(champion: Champion, run_manifest: Path) -> dict[str, Any]:
    """What changed from the champion's data to this run's (detector.data_changes), or why that is unknown."""
    version = int(champion.version) if champion.version else None
    if version is None:
        return data_changes.absent(None, NO_CHAMPION)
    if not champion.manifest:
        return data_changes.absent(version, f"champion v{version} names no data manifest (registered before runs "
                                   "pinned their data)")  # fmt: skip
    try:
        now = manifest.loads(run_manifest.read_bytes())
    except (OSError, ValueError) as error:
        return _unknown(version, f"this run's manifest {run_manifest}: {reason_of(error)}")
    where = f"champion v{version}'s manifest {champion.manifest}"
    try:
        data = read_bytes(champion.manifest)
        then = manifest.loads(data)
    except Exception as error:  # a manifest gone, refused or damaged says so; it never fails the job
        return _unknown(version, f"{where}: {reason_of(error)}")
    found = manifest.digest(data)
    if champion.manifest_sha256 and found != champion.manifest_sha256:  # not the data the champion learnt from
        return _unknown(version, f"{where}: sha256 {found}, not the {champion.manifest_sha256} its package names")
    changes = data_changes.compare(now, then, champion_version=version)
    jobs.event(log, "data changes", champion_version=version, **changes["totals"])
    return changes


def _unknown(version: int, reason: str) -> dict[str, Any]:
    jobs.event(log, "data changes unknown", champion_version=version, reason=reason)
    return data_changes.absent(version, reason[:REASON_LENGTH])

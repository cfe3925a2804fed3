"""The run's dataset as Evaluate reports it: evaluation.json's `dataset` section, from Preprocess's `report` output
(its dataset_report.json and manifest.jsonl, the job's `dataset` input).

`as_of` is the run's DataAsOf as Preprocess applied it, `manifest_uri` where the manifest lives in S3 (what the model
package's DataManifest metadata names), `manifest_sha256` the digest of its bytes (checked against the one
Preprocess reported: a manifest that changed on its way fails the job), `images` its images per split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detector import jobs, manifest

REPORT_FILE = "dataset_report.json"  # detector.preprocess.REPORT_FILE (importing it would load MXNet's writer)


def section(folder: Path, manifest_uri: str) -> dict[str, Any]:
    """evaluation.json's `dataset`; JobError naming the file when the run's dataset cannot be read."""
    try:
        data = (folder / manifest.MANIFEST_FILE).read_bytes()
        report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
        entries = manifest.loads(data)
    except (OSError, ValueError) as error:
        raise jobs.JobError(f"dataset {folder}: cannot read the run's manifest or report ({error})") from None
    digest = manifest.digest(data)
    reported = (report.get("manifest") or {}).get("sha256")
    if reported != digest:
        raise jobs.JobError(
            f"dataset {folder}: {manifest.MANIFEST_FILE} has sha256 {digest}, Preprocess reported {reported}"
        )
    return {
        "as_of": report.get("as_of"),
        "manifest_uri": manifest_uri,
        "manifest_sha256": digest,
        "images": {split: len(refs) for split, refs in manifest.by_split(entries).items()},
    }

"""The champion: the group's approved model when a run starts, which Evaluate scores beside the new one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from control_plane.ports import RegistryPort
from pipeline_def.names import CHAMPION_URI, CHAMPION_VERSION


class Champion(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    model_data_url: str


def latest_approved(registry: RegistryPort) -> Champion | None:
    """The newest Approved version of the group (a version approved and later rejected no longer counts)."""
    summaries, _ = registry.list_packages("Approved", None, 1)
    if not summaries:
        return None
    package = registry.describe_arn(summaries[0]["ModelPackageArn"])
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = containers[0].get("ModelDataUrl") if containers else None
    if not url:
        return None
    return Champion(version=int(package["ModelPackageVersion"]), model_data_url=str(url))


def champion_parameters(registry: RegistryPort, declared: list[str]) -> dict[str, str]:
    """The run parameters that name the champion, for a pipeline that declares them (empty values: none)."""
    if CHAMPION_URI not in declared or CHAMPION_VERSION not in declared:
        return {}
    found = latest_approved(registry)
    if found is None:
        return {CHAMPION_URI: "", CHAMPION_VERSION: ""}
    return {CHAMPION_URI: found.model_data_url, CHAMPION_VERSION: str(found.version)}

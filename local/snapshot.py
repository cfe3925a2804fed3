"""The local stack's state across restarts. moto keeps everything in memory, so the stack saves what a user would
expect to find again (local/stack.py: a few seconds after each change, and when it stops) and `restore` re-creates it
at start: the config parameter, the Slack secret, the tables' items, the registered model packages (same versions,
same approvals) and the buckets' objects (local/mirror.py).

    state.json                 the parameter, the secret, the tables' items, the packages: replaced whole
    objects.json, objects/     the buckets (local/mirror.py)

Each item comes back on its own; one that cannot is named and skipped, and the stack starts with the rest.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from local import persist
from local.changes import Objects
from local.mirror import Mirror
from local.persist import Skipped

# what CreateModelPackage takes back from DescribeModelPackage
PACKAGE_FIELDS = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "ModelMetrics",
    "MetadataProperties",
    "CustomerMetadataProperties",
    "Domain",
    "Task",
)
TABLES = ("AuditTable", "IdempotencyTable")


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), indent=1)


def pruned(value: Any) -> Any:
    """`value` without the empty maps and lists (and nulls) in it: SageMaker leaves out a member that was never set,
    and refuses an empty one in a request (CustomerMetadataProperties: at least one entry)."""
    if isinstance(value, dict):
        kept = {k: pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [v for v in (pruned(v) for v in value) if v not in ({}, [], None)]
    return value


def package_request(package: dict[str, Any]) -> dict[str, Any]:
    """CreateModelPackage's members for a package as DescribeModelPackage answered it."""
    kept = pruned({k: package.get(k) for k in PACKAGE_FIELDS})
    return dict(kept)


class Snapshot:
    def __init__(self, folder: Path, aws: dict[str, Any], *, values: dict[str, str], group: str) -> None:
        self.folder, self.aws, self.values, self.group = folder, aws, values, group
        self.state_file = folder / "state.json"
        self.mirror = Mirror(folder)

    def save(self, changed: Objects | None = None) -> None:
        """Everything but the objects, and the objects that `changed` names (all of them when None)."""
        parameter = self.aws["ssm"].get_parameter(Name=self.values["ConfigParameter"])["Parameter"]
        secret = self.aws["secretsmanager"].get_secret_value(SecretId=self.values["SlackSecret"])["SecretString"]
        tables = {name: self._scan(self.values[name]) for name in TABLES}
        state = {"parameter": parameter["Value"], "secret": secret, "tables": tables, "packages": self._packages()}
        persist.write_text(self.state_file, _json(state))
        self.mirror.save(self.aws["s3"], changed)

    def _scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.aws["dynamodb"].get_paginator("scan").paginate(TableName=table)
        return [item for page in pages for item in page["Items"]]

    def _packages(self) -> list[dict[str, Any]]:
        pages = (
            self.aws["sagemaker"]
            .get_paginator("list_model_packages")
            .paginate(ModelPackageGroupName=self.group, SortBy="CreationTime", SortOrder="Ascending")
        )
        described = (
            self.aws["sagemaker"].describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            for page in pages
            for summary in page["ModelPackageSummaryList"]
        )
        return [pruned({k: v for k, v in d.items() if k != "ResponseMetadata"}) for d in described]

    def restore(self) -> list[Skipped] | None:
        """Re-create what `save` kept, item by item; what did not come back (empty when everything did), or None when
        nothing was saved."""
        persist.remove_temporaries(self.folder)
        skipped: list[Skipped] = []
        self.mirror.load(skipped)
        if not self.state_file.is_file() and not self.mirror.saved():
            return skipped or None
        self.mirror.restore(self.aws["s3"], skipped)
        state: dict[str, Any] = {}
        persist.attempt("the saved state (config, secret, tables, model packages)", partial(self._read, state), skipped)
        if state:
            self._restore_state(state, skipped)
        return skipped

    def _read(self, into: dict[str, Any]) -> None:
        state = json.loads(self.state_file.read_text())
        if not isinstance(state, dict):
            raise ValueError(f"{self.state_file} holds no state")
        into.update(state)

    def _restore_state(self, state: dict[str, Any], skipped: list[Skipped]) -> None:
        name, secret = self.values["ConfigParameter"], self.values["SlackSecret"]
        put_parameter = partial(self.aws["ssm"].put_parameter, Name=name, Type="String", Overwrite=True)
        persist.attempt(f"parameter {name}", lambda: put_parameter(Value=state["parameter"]), skipped)
        put_secret = partial(self.aws["secretsmanager"].put_secret_value, SecretId=secret)
        persist.attempt(f"secret {secret}", lambda: put_secret(SecretString=state["secret"]), skipped)
        for table, items in dict(state.get("tables") or {}).items():
            self._restore_items(table, items, skipped)
        self._restore_packages(list(state.get("packages") or []), skipped)

    def _restore_items(self, table: str, items: list[dict[str, Any]], skipped: list[Skipped]) -> None:
        name = self.values.get(table, table)
        for number, item in enumerate(items, 1):
            put = partial(self.aws["dynamodb"].put_item, TableName=name, Item=item)
            persist.attempt(f"{table} item {number} of {len(items)}", put, skipped)

    def _restore_packages(self, packages: list[dict[str, Any]], skipped: list[Skipped]) -> None:
        """In version order. CreateModelPackage numbers a group's packages itself, so a package can keep its version
        only when every version before it came back: after one that did not, the later ones are skipped too, named,
        rather than renumbered (a version names a model in the audit trail, the decisions and the endpoint) or
        filled with a made-up package."""
        restored = 0
        for package in sorted(packages, key=lambda p: int(p.get("ModelPackageVersion") or 0)):
            version = package.get("ModelPackageVersion")
            item = f"model package {self.group}/{version}"
            if version != restored + 1:
                reason = f"it would come back as version {restored + 1}, and versions are never renumbered"
                skipped.append(Skipped(item, reason))
                continue
            arn: list[str] = []
            if persist.attempt(item, partial(self._create_package, package, arn), skipped):
                restored += 1
                self._restore_approval(arn[0], package, skipped)

    def _create_package(self, package: dict[str, Any], arn: list[str]) -> None:
        created = self.aws["sagemaker"].create_model_package(
            ModelPackageGroupName=self.group, ModelApprovalStatus="PendingManualApproval", **package_request(package)
        )
        arn.append(created["ModelPackageArn"])

    def _restore_approval(self, arn: str, package: dict[str, Any], skipped: list[Skipped]) -> None:
        status = package.get("ModelApprovalStatus", "PendingManualApproval")
        if status == "PendingManualApproval":
            return
        description = {k: package[k] for k in ("ApprovalDescription",) if k in package}
        update = partial(
            self.aws["sagemaker"].update_model_package, ModelPackageArn=arn, ModelApprovalStatus=status, **description
        )
        version = package.get("ModelPackageVersion")
        persist.attempt(f"approval ({status}) of model package {self.group}/{version}", update, skipped)

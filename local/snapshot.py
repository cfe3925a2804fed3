"""The local stack's state across restarts. moto keeps everything in memory, so `stop` saves what a user
would expect to find again and `start` re-creates it: S3 objects, the config parameter, the tables' items,
the Slack secret, the registered model packages (same versions, same approvals) and the executions.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

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


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), indent=1)


def save(folder: Path, aws: dict[str, Any], *, values: dict[str, str], group: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    objects = folder / "s3"
    for bucket in aws["s3"].list_buckets()["Buckets"]:
        pages = aws["s3"].get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
        for obj in (o for page in pages for o in page.get("Contents", [])):
            target = objects / bucket["Name"] / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            aws["s3"].download_file(bucket["Name"], obj["Key"], str(target))
    parameter = aws["ssm"].get_parameter(Name=values["ConfigParameter"])["Parameter"]
    secret = aws["secretsmanager"].get_secret_value(SecretId=values["SlackSecret"])["SecretString"]
    tables = {
        name: aws["dynamodb"].scan(TableName=values[name])["Items"] for name in ("AuditTable", "IdempotencyTable")
    }
    listed = aws["sagemaker"].list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Ascending"
    )
    packages = [
        aws["sagemaker"].describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in listed["ModelPackageSummaryList"]
    ]
    (folder / "state.json").write_text(
        _json({"parameter": parameter["Value"], "secret": secret, "tables": tables, "packages": packages})
    )


def restore(folder: Path, aws: dict[str, Any], *, values: dict[str, str], group: str) -> bool:
    """Re-create what `save` kept; False when there is nothing to restore."""
    state_file = folder / "state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    objects = folder / "s3"
    for bucket in sorted(p for p in objects.iterdir() if p.is_dir()) if objects.exists() else []:
        existing = {b["Name"] for b in aws["s3"].list_buckets()["Buckets"]}
        if bucket.name not in existing:
            aws["s3"].create_bucket(Bucket=bucket.name)
        for file in sorted(p for p in bucket.rglob("*") if p.is_file()):
            aws["s3"].upload_file(str(file), bucket.name, file.relative_to(bucket).as_posix())
    aws["ssm"].put_parameter(Name=values["ConfigParameter"], Value=state["parameter"], Type="String", Overwrite=True)
    aws["secretsmanager"].put_secret_value(SecretId=values["SlackSecret"], SecretString=state["secret"])
    for name, items in state["tables"].items():
        for item in items:
            aws["dynamodb"].put_item(TableName=values[name], Item=item)
    for package in state["packages"]:
        request = {k: package[k] for k in PACKAGE_FIELDS if k in package}
        arn = aws["sagemaker"].create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval", **request
        )["ModelPackageArn"]
        if package.get("ModelApprovalStatus", "PendingManualApproval") != "PendingManualApproval":
            aws["sagemaker"].update_model_package(
                ModelPackageArn=arn,
                ModelApprovalStatus=package["ModelApprovalStatus"],
                ApprovalDescription=package.get("ApprovalDescription", ""),
            )
    return True

"""The local stack's saved state (local/snapshot.py, local/mirror.py) against moto: odd items come back, and what
cannot come back is named and skipped while the rest is restored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local import changes, constraints
from local.emulator import reset_moto
from local.iam import enforce
from local.persist import Skipped
from local.snapshot import Snapshot
from local.template import create_artifact_bucket, provision
from tests.integration.conftest import Stack

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/detector:1"
INFERENCE = {
    "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"}],
    "SupportedContentTypes": ["application/x-image"],
    "SupportedResponseMIMETypes": ["application/json"],
}


@pytest.fixture
def group(stack: Stack) -> str:
    properties = stack.template.resource("ModelPackageGroup")["Properties"]
    return str(stack.template.resolve(properties["ModelPackageGroupName"], stack.values))


def snapshot(stack: Stack, folder: Path, group: str) -> Snapshot:
    return Snapshot(folder, stack.aws, values=stack.values, group=group)


def restart(stack: Stack, moto_endpoint: str) -> None:
    """A new process's moto: empty, then the template's resources, as the local stack starts."""
    reset_moto(moto_endpoint)
    provision(stack.template, stack.aws, {})
    create_artifact_bucket(stack.template, stack.aws["s3"], stack.values["ArtifactBucket"])
    enforce.configure(stack.aws["secretsmanager"], {"SlackSecret": stack.values["SlackSecret"]})


def register(stack: Stack, group: str, **fields: Any) -> str:
    created = stack.aws["sagemaker"].create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification=INFERENCE,
        **fields,
    )
    return str(created["ModelPackageArn"])


def packages(stack: Stack, group: str) -> list[dict[str, Any]]:
    listed = stack.aws["sagemaker"].list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime")
    return [
        stack.aws["sagemaker"].describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in listed["ModelPackageSummaryList"]
    ]


def test_a_package_registered_without_metadata_and_approved_comes_back(
    stack: Stack, group: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a package registered with no CustomerMetadataProperties (as the AWS CLI registers one), then approved
    arn = register(stack, group)
    stack.aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    snapshot(stack, tmp_path, group).save()

    # When the stack starts again from what it saved
    restart(stack, moto_endpoint)
    skipped = snapshot(stack, tmp_path, group).restore()

    # Then everything came back: the same version, still approved, still without metadata
    assert skipped == []
    [package] = packages(stack, group)
    assert (package["ModelPackageVersion"], package["ModelApprovalStatus"]) == (1, "Approved")
    assert "CustomerMetadataProperties" not in package


def test_a_package_that_cannot_come_back_is_named_and_later_versions_are_not_renumbered(
    stack: Stack, group: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given three packages, the config, an object; and a saved second package that CreateModelPackage refuses
    for version in (1, 2, 3):
        register(stack, group, CustomerMetadataProperties={"run": str(version)})
    stack.aws["s3"].put_object(Bucket=stack.values["ArtifactBucket"], Key="a/b.txt", Body=b"kept")
    snapshot(stack, tmp_path, group).save()
    state = json.loads((tmp_path / "state.json").read_text())
    state["packages"][1]["InferenceSpecification"]["Containers"][0]["Image"] = "not an image"
    (tmp_path / "state.json").write_text(json.dumps(state))
    parameter = state["parameter"]

    # When the stack starts again
    restart(stack, moto_endpoint)
    stack.aws["ssm"].put_parameter(Name=stack.values["ConfigParameter"], Value="a: 1", Overwrite=True, Type="String")
    skipped = snapshot(stack, tmp_path, group).restore()
    refused = constraints.take()

    # Then version 2 is named with SageMaker's reason, version 3 is named rather than renumbered, and the rest is back
    assert [s.item for s in skipped or []] == [f"model package {group}/2", f"model package {group}/3"]
    assert "InferenceSpecification.Containers[0].Image" in (skipped or [])[0].reason
    assert "never renumbered" in (skipped or [])[1].reason
    assert [len(refused)] == [1]
    assert [(p["ModelPackageVersion"], p["CustomerMetadataProperties"]) for p in packages(stack, group)] == [
        (1, {"run": "1"})
    ]
    config = stack.aws["ssm"].get_parameter(Name=stack.values["ConfigParameter"])["Parameter"]["Value"]
    assert config == parameter
    body = stack.aws["s3"].get_object(Bucket=stack.values["ArtifactBucket"], Key="a/b.txt")["Body"].read()
    assert body == b"kept"


def test_a_half_written_snapshot_is_skipped_and_named_and_the_objects_come_back(
    stack: Stack, group: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a saved bucket with two objects, a state file cut short (as a killed non-atomic writer left it), a
    # temporary file a killed save left behind, and one object whose saved copy is gone
    bucket = stack.values["ArtifactBucket"]
    stack.aws["s3"].put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")
    stack.aws["s3"].put_object(Bucket=bucket, Key="lost.txt", Body=b"lost")
    snapshot(stack, tmp_path, group).save()
    text = (tmp_path / "state.json").read_text()
    (tmp_path / "state.json").write_text(text[: len(text) // 2])
    (tmp_path / ".state.json.1.2.tmp").write_text("{}")
    index = json.loads((tmp_path / "objects.json").read_text())
    (tmp_path / "objects" / index[bucket]["lost.txt"]["file"]).unlink()

    # When the stack starts again
    restart(stack, moto_endpoint)
    provisioned = stack.aws["ssm"].get_parameter(Name=stack.values["ConfigParameter"])["Parameter"]["Value"]
    skipped = snapshot(stack, tmp_path, group).restore() or []

    # Then the cut state and the lost object are named, the other object is back, the rest is as provisioned
    assert [s.item for s in skipped] == [
        f"s3://{bucket}/lost.txt",
        "the saved state (config, secret, tables, model packages)",
    ]
    assert stack.aws["s3"].get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"kept"
    assert stack.aws["ssm"].get_parameter(Name=stack.values["ConfigParameter"])["Parameter"]["Value"] == provisioned
    assert not (tmp_path / ".state.json.1.2.tmp").exists()


def test_a_save_copies_only_the_objects_that_changed(stack: Stack, group: str, tmp_path: Path) -> None:
    # Given a saved bucket, and moto counting the requests that change it
    changes.install()
    bucket = stack.values["ArtifactBucket"]
    for key in ("same", "changed", "deleted"):
        stack.aws["s3"].put_object(Bucket=bucket, Key=key, Body=key.encode())
    saved = snapshot(stack, tmp_path, group)
    saved.save()
    files = {k: tmp_path / "objects" / e["file"] for k, e in saved.mirror.index[bucket].items()}
    before = {k: f.stat().st_ino for k, f in files.items()}
    changes.take_objects()

    # When one object changes, one goes, one comes, and the stack saves what moto says changed
    stack.aws["s3"].put_object(Bucket=bucket, Key="changed", Body=b"new")
    stack.aws["s3"].delete_object(Bucket=bucket, Key="deleted")
    stack.aws["s3"].put_object(Bucket=bucket, Key="new/one", Body=b"one")
    changed = changes.take_objects()
    saved.save(changed)

    # Then only those were looked at: the unchanged copy was left alone, the changed one replaced, the deleted one
    # removed, the new one copied
    assert changed == {bucket: {"changed", "deleted", "new/one"}}
    assert files["same"].stat().st_ino == before["same"]
    assert files["changed"].read_bytes() == b"new"
    assert not files["deleted"].exists()
    index = json.loads((tmp_path / "objects.json").read_text())[bucket]
    assert sorted(index) == ["changed", "new/one", "same"]
    assert (tmp_path / "objects" / index["new/one"]["file"]).read_bytes() == b"one"


def test_skipped_items_read_as_item_and_reason() -> None:
    assert str(Skipped("model package g/2", "refused")) == "model package g/2: refused"


def test_restore_with_nothing_saved_says_so(stack: Stack, group: str, tmp_path: Path) -> None:
    assert snapshot(stack, tmp_path / "none", group).restore() is None


def test_a_snapshot_saved_before_the_mirror_comes_back(
    stack: Stack, group: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a snapshot from before the mirror: objects as files under s3/<bucket>/<key>, and its state.json
    snapshot(stack, tmp_path, group).save()
    (tmp_path / "objects.json").unlink()
    legacy = tmp_path / "s3" / stack.values["ArtifactBucket"] / "a" / "b.txt"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("old layout")

    # When the stack starts from it, then saves
    restart(stack, moto_endpoint)
    restored = snapshot(stack, tmp_path, group)
    skipped = restored.restore()
    restored.save()

    # Then the object is back, and the next save replaced the old layout
    assert skipped == []
    body = stack.aws["s3"].get_object(Bucket=stack.values["ArtifactBucket"], Key="a/b.txt")["Body"].read()
    assert body == b"old layout"
    assert not (tmp_path / "s3").exists()

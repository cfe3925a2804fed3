"""ListObjectVersions in the local stack: Preprocess asks it once per image (the version of each image as of
DataAsOf), so it must cost what that key's versions cost, not a copy of the whole bucket (moto 5 deep-copies every
version of every key, values included, on every call: a bucket of checkpoints and model archives filled the disk)."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest

BUCKET = "scratch-detector-123456789012"


def test_listing_one_keys_versions_copies_only_that_keys_versions_and_answers_as_s3(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a versioned bucket with an image written twice and a big object written often beside it
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="images/a.jpg", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=BUCKET, Key="images/a.jpg", Body=b"two")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="images/a.jpg.bak", Body=b"other")
    for _ in range(5):
        s3.put_object(Bucket=BUCKET, Key="pipeline/run/Train/checkpoints/state.params", Body=b"x" * 1_000_000)
    copied: list[str] = []
    original = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if isinstance(value, list) and value and hasattr(value[0], "name"):
            copied.extend(version.name for version in value)
        return original(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    # When the versions of the image are listed, as Preprocess lists them
    answer = s3.list_object_versions(Bucket=BUCKET, Prefix="images/a.jpg")
    # Then only the keys under the prefix were copied
    assert set(copied) == {"images/a.jpg", "images/a.jpg.bak"}
    # And the answer is S3's: both versions of the key, newest first and marked latest, and the longer key too
    versions = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in answer["Versions"]]
    assert versions[:2] == [("images/a.jpg", second, True), ("images/a.jpg", first, False)]
    assert [v[0] for v in versions[2:]] == ["images/a.jpg.bak"]
    # And a listing of the whole bucket still lists every version
    everything = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(everything) == 2 + 1 + 5

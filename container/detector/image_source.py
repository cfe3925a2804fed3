"""Preprocess's image reads: each labelled image's bytes by its URI, as of the run's time, checked whole and of the
labelled size.

`s3://bucket/key` through one shared client, at the object's version that was current at the as-of time: the
newest version of that exact key (ListObjectVersions, which needs s3:ListBucketVersions on the bucket) last modified
at or before it, read by its id (GetObject with VersionId, which needs s3:GetObjectVersion on the object). So a
retry or a rerun with the same as-of time reads the same bytes after the image was overwritten (the buckets are
versioned); an image deleted, or not yet put, at that time is dropped with the reason. Anything else is a path
(relative ones under the image root), with no version id. The downloads (and decodes) run on a thread pool ahead of
the one writer, in the records' order.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from detector import images
from detector.records import Record, RecordError


@dataclass(frozen=True)
class Version:
    """A version of an S3 object, or a delete marker."""

    modified: datetime
    version_id: str
    delete_marker: bool
    latest: bool


@dataclass(frozen=True)
class Loaded:
    """An image read for a record: its bytes and S3 version id (None: a local path), or why it cannot be used."""

    data: bytes | None
    version_id: str | None = None
    problem: str | None = None


class ImageSource:
    """Fetches image bytes by URI as of `as_of`: `s3://bucket/key` through one shared client at the version current
    then, anything else as a local path."""

    def __init__(self, image_root: Path, workers: int, as_of: datetime) -> None:
        self.image_root = image_root
        self.workers = workers
        self.as_of = as_of
        self._s3: Any = None

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3", config=Config(max_pool_connections=self.workers, retries={"mode": "standard"})
            )
        return self._s3

    def prepare(self, uris: list[str]) -> None:
        if any(uri.startswith("s3://") for uri in uris):
            self._client()  # created once, before the threads share it

    def fetch(self, uri: str) -> tuple[bytes, str | None]:
        """The image's bytes and S3 version id (None for a local path); RecordError naming the image and why."""
        if uri.startswith("s3://"):
            from botocore.exceptions import ClientError

            location = urlparse(uri)
            bucket, key = location.netloc, location.path.lstrip("/")
            try:
                version = self.version_as_of(bucket, key, uri)
                response = self._client().get_object(Bucket=bucket, Key=key, VersionId=version)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "error")
                raise RecordError(f"image {uri}: {code}") from None
            return bytes(response["Body"].read()), version
        path = Path(uri) if Path(uri).is_absolute() else self.image_root / uri
        try:
            return path.read_bytes(), None
        except OSError as error:
            raise RecordError(f"image {uri}: {error.strerror or 'unreadable'}") from None

    def versions(self, bucket: str, key: str) -> list[Version]:
        """Every version of exactly `key` (and its delete markers)."""
        found = []
        for page in self._client().get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for kind in ("Versions", "DeleteMarkers"):
                found += [
                    Version(item["LastModified"], str(item["VersionId"]), kind == "DeleteMarkers", item["IsLatest"])
                    for item in page.get(kind, [])
                    if item["Key"] == key  # a prefix lists longer keys too
                ]
        return found

    def version_as_of(self, bucket: str, key: str, uri: str) -> str:
        """The id of the key's version current at the as-of time: the newest one last modified at or before it.
        An unversioned bucket's object has the version id "null", which GetObject takes too.

        S3 keeps LastModified to the second, and boto3 parses versions and delete markers into two lists: of several
        versions last modified in the newest second, the key's latest is the newest; otherwise which one was current
        cannot be told, and the image is dropped rather than guessed."""
        then = [version for version in self.versions(bucket, key) if version.modified <= self.as_of]
        if not then:
            raise RecordError(f"image {uri}: no version at or before the as-of time {self.as_of.isoformat()}")
        newest = max(version.modified for version in then)
        same_second = [version for version in then if version.modified == newest]
        tied = [version for version in same_second if version.latest] if len(same_second) > 1 else same_second
        if len(tied) != 1:
            raise RecordError(
                f"image {uri}: {len(same_second)} versions last modified in the second {newest.isoformat()},"
                " at or before the as-of time: which one was current then cannot be told"
            )
        if tied[0].delete_marker:
            raise RecordError(f"image {uri}: deleted at or before the as-of time {self.as_of.isoformat()}")
        return tied[0].version_id


def check_image(data: bytes, record: Record) -> None:
    """A whole, decodable image of the labelled size."""
    try:
        width, height = images.whole_image(data)
    except images.NotAnImage:
        raise RecordError(f"image {record.source_ref}: not a decodable image (corrupt or truncated)") from None
    if (width, height) != (record.image_width, record.image_height):
        raise RecordError(
            f"image {record.source_ref}: is {width}x{height}"
            f" but the record says {record.image_width}x{record.image_height}"
        )


def _load(source: ImageSource, record: Record) -> Loaded:
    try:
        data, version_id = source.fetch(record.source_ref)
        check_image(data, record)
    except RecordError as error:
        return Loaded(None, problem=str(error))
    return Loaded(data, version_id)


def fetch_all(source: ImageSource, records: list[Record]) -> Iterator[Loaded]:
    """Each record's image, in the records' order, while up to `workers` downloads (and decodes) run ahead."""
    source.prepare([record.source_ref for record in records])
    with ThreadPoolExecutor(max_workers=source.workers, thread_name_prefix="fetch") as pool:
        yield from pool.map(lambda record: _load(source, record), records)

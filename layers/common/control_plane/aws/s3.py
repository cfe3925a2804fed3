"""S3: small JSON documents (the evaluation report), presigned links to a run's results, and what was written under a
prefix since a time (the schedule's data check)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from control_plane.aws.clients import CONFIG, LazyClient, client
from control_plane.models import StoreScan

MAX_REPORT_BYTES = 1 << 20
MAX_PICTURE_BYTES = 8 << 20


# What S3 answers for an object that is not there: 404 (NoSuchKey; "404" to HEAD, which has no body to name it) to a
# caller that may list the bucket, and 403 (AccessDenied; "403" to HEAD) to one that may not, so that it cannot learn
# which keys exist. The functions read artefacts by key only (no s3:ListBucket on the artefact bucket), so on AWS a
# report or picture a run has not written yet is a 403: both mean "not there for this reader".
MISSING = {"NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"}


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in MISSING


def read_bytes(uri: str, s3: Any = None, limit: int = MAX_PICTURE_BYTES) -> bytes | None:
    """The object at `uri` (at most `limit` bytes), or None when there is none."""
    bucket, key = _location(uri)
    try:
        body = (s3 or client("s3")).get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if _missing(error):
            return None
        raise
    data: bytes = body.read(limit)
    return data


def read_json(uri: str, s3: Any = None) -> dict[str, Any] | None:
    """The JSON object at `uri`, or None when there is none (a run that has not reached the step)."""
    data = read_bytes(uri, s3, MAX_REPORT_BYTES)
    document = json.loads(data) if data is not None else None
    return document if isinstance(document, dict) else None


def _location(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


class Presigner:
    """Presigned GET URLs of the objects a person may download, signed with the function's own role: a URL
    works only for what that role may read, and only for `expires_seconds`."""

    def __init__(self, expires_seconds: int = 900, s3: Any = None) -> None:
        self.expires_seconds = expires_seconds
        self._s3 = s3

    @cached_property
    def _client(self) -> Any:
        # SigV4 whatever the botocore default: the only signature every region takes
        return self._s3 or boto3.client("s3", config=CONFIG.merge(Config(signature_version="s3v4")))

    def presign(self, uri: str) -> str | None:
        bucket, key = _location(uri)
        try:
            self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.expires_seconds
        )
        return url


class ObjectListing:
    """What ListObjectsV2 says was written under a prefix: each object's LastModified (S3's time of the write that
    made the object as it is; an object is never changed in place, only replaced)."""

    _s3 = LazyClient("s3")

    def __init__(self, s3: Any = None) -> None:
        self._client = s3

    def written_since(self, uri: str, since: datetime, *, max_objects: int, page_size: int = 1000) -> StoreScan:
        """The objects under `uri` (a plain key prefix, as an S3Prefix input reads it) last written at or after
        `since`, listed page by page (ListObjectsV2's largest page by default) until the first page that has one;
        `complete` is False when `max_objects` were listed without finding one and without reaching the end."""
        bucket, prefix = _location(uri)
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        examined = 0
        for page in pages:
            contents = page.get("Contents", [])
            examined += len(contents)
            newer = sorted(
                ((item["LastModified"], item["Key"]) for item in contents if item["LastModified"] >= since),
                reverse=True,
            )
            if newer:
                return StoreScan(examined=examined, newer=[key for _, key in newer], newest=newer[0][0])
            if examined >= max_objects and page.get("IsTruncated"):
                return StoreScan(examined=examined, complete=False)
        return StoreScan(examined=examined)

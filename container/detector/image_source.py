"""Preprocess's image reads: each labelled image's bytes by its URI, checked whole and of the labelled size.

`s3://bucket/key` through one shared client, anything else as a path (relative ones under the image root). The
downloads (and decodes) run on a thread pool ahead of the one writer, in the records' order.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from detector import images
from detector.records import Record, RecordError


class ImageSource:
    """Fetches image bytes by URI: `s3://bucket/key` through one shared client, anything else as a local path."""

    def __init__(self, image_root: Path, workers: int) -> None:
        self.image_root = image_root
        self.workers = workers
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

    def fetch(self, uri: str) -> bytes:
        if uri.startswith("s3://"):
            from botocore.exceptions import ClientError

            location = urlparse(uri)
            try:
                response = self._client().get_object(Bucket=location.netloc, Key=location.path.lstrip("/"))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "error")
                raise RecordError(f"image {uri}: {code}") from None
            return bytes(response["Body"].read())
        path = Path(uri) if Path(uri).is_absolute() else self.image_root / uri
        try:
            return path.read_bytes()
        except OSError as error:
            raise RecordError(f"image {uri}: {error.strerror or 'unreadable'}") from None


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


def _load(source: ImageSource, record: Record) -> tuple[bytes | None, str | None]:
    try:
        data = source.fetch(record.source_ref)
        check_image(data, record)
    except RecordError as error:
        return None, str(error)
    return data, None


def fetch_all(source: ImageSource, records: list[Record]) -> Iterator[tuple[bytes | None, str | None]]:
    """Each record's (image bytes, None) or (None, why not), in the records' order, while up to `workers`
    downloads (and decodes) run ahead."""
    source.prepare([record.source_ref for record in records])
    with ThreadPoolExecutor(max_workers=source.workers, thread_name_prefix="fetch") as pool:
        yield from pool.map(lambda record: _load(source, record), records)

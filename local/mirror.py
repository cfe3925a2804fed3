"""The emulated buckets mirrored into a folder, for a restart: each save copies only the objects whose ETag
changed since the last one, and forgets the deleted ones.

    objects.json         bucket -> key -> {"etag", "file"}: what a restore uploads; replaced whole after its files
    objects/<sha256>     one object's body, named by its bucket and key (keys may nest where files cannot)

A save killed half-way leaves the previous index, which names only complete files. A snapshot written before the
mirror existed (`s3/<bucket>/<key>`) is restored too; the next save replaces it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local import persist
from local.changes import Objects
from local.persist import Skipped

Index = dict[str, dict[str, dict[str, str]]]


def _file_name(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()


class Mirror:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index_file = folder / "objects.json"
        self.objects = folder / "objects"
        self.legacy = folder / "s3"
        self.index: Index = {}

    def load(self, skipped: list[Skipped]) -> None:
        """The saved index; an unreadable one is named and the buckets start empty."""
        if self.index_file.is_file():
            persist.attempt("the saved objects' index", self._read_index, skipped)

    def _read_index(self) -> None:
        index = json.loads(self.index_file.read_text())
        if not isinstance(index, dict):
            raise ValueError(f"{self.index_file} holds no index")
        self.index = index

    def save(self, s3: Any, changed: Objects | None = None) -> None:
        """Copy what changed: the `changed` objects (local/changes.py), each bucket the mirror does not know yet, and
        every object when `changed` is None. Objects whose ETag the mirror already holds are not copied again."""
        saved: Index = {}
        for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
            known = self.index.get(bucket)
            keys = None if changed is None or known is None else changed.get(bucket, set())
            if keys is None:
                saved[bucket] = self._listed(s3, bucket, known or {})
            else:
                saved[bucket] = self._rechecked(s3, bucket, known=dict(known or {}), keys=keys)
        persist.write_text(self.index_file, json.dumps(saved, indent=1))
        gone = {e["file"] for b in self.index.values() for e in b.values()} - {
            e["file"] for b in saved.values() for e in b.values()
        }
        for name in gone:
            (self.objects / name).unlink(missing_ok=True)
        self.index = saved
        shutil.rmtree(self.legacy, ignore_errors=True)

    def _listed(self, s3: Any, bucket: str, known: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        listed = ((o["Key"], o["ETag"]) for page in pages for o in page.get("Contents", []))
        return {key: self._copy(s3, bucket, key, etag=etag, known=known.get(key)) for key, etag in listed}

    def _rechecked(
        self, s3: Any, bucket: str, *, known: dict[str, dict[str, str]], keys: set[str]
    ) -> dict[str, dict[str, str]]:
        """`known` with `keys` as the bucket holds them now: copied, or gone."""
        for key in keys:
            try:
                etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
            except ClientError as error:
                if error.response["Error"]["Code"] not in {"404", "NoSuchKey", "NotFound"}:
                    raise
                known.pop(key, None)
                continue
            known[key] = self._copy(s3, bucket, key, etag=etag, known=known.get(key))
        return known

    def _copy(self, s3: Any, bucket: str, key: str, *, etag: str, known: dict[str, str] | None) -> dict[str, str]:
        """The object's entry, its body copied unless the saved one has its ETag."""
        name = _file_name(bucket, key)
        if known is not None and known["etag"] == etag and (self.objects / name).is_file():
            return known
        copied: list[str] = []

        def download(temporary: Path) -> None:
            answer = s3.get_object(Bucket=bucket, Key=key)
            copied.append(answer["ETag"])  # the body's own: the object may have changed since it was listed
            with temporary.open("wb") as file:
                shutil.copyfileobj(answer["Body"], file)

        persist.replace(self.objects / name, download)
        return {"etag": copied[0], "file": name}

    def restore(self, s3: Any, skipped: list[Skipped]) -> None:
        """Each bucket, then each object, on its own."""
        existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        for bucket, objects in sorted(self._saved().items()):
            if bucket not in existing and not persist.attempt(
                f"bucket {bucket}", partial(s3.create_bucket, Bucket=bucket), skipped
            ):
                skipped += [Skipped(f"s3://{bucket}/{key}", "its bucket was not restored") for key in objects]
                continue
            for key, file in objects.items():
                persist.attempt(f"s3://{bucket}/{key}", partial(_upload, s3, file, bucket=bucket, key=key), skipped)

    def saved(self) -> bool:
        return bool(self._saved())

    def _saved(self) -> dict[str, dict[str, Path]]:
        """bucket -> key -> the saved body (an empty bucket comes back too)."""
        if not self.index and self.legacy.is_dir():
            return {
                bucket.name: {f.relative_to(bucket).as_posix(): f for f in sorted(bucket.rglob("*")) if f.is_file()}
                for bucket in self.legacy.iterdir()
                if bucket.is_dir()
            }
        return {
            bucket: {key: self.objects / entry["file"] for key, entry in objects.items()}
            for bucket, objects in self.index.items()
        }


def _upload(s3: Any, file: Path, *, bucket: str, key: str) -> None:
    if not file.is_file():
        raise FileNotFoundError(f"its saved copy {file.name} is missing")
    s3.upload_file(str(file), bucket, key)

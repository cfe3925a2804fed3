"""The SageMaker Feature Store runtime that moto lacks: PutRecord, GetRecord and DeleteRecord over HTTP.

Feature groups themselves live in moto's SageMaker (CreateFeatureGroup, DescribeFeatureGroup); this server
reads their definitions from there, keeps the online store in memory and writes every record to the offline
store in moto's S3 as AWS does (sam_stack/offline_store.py): buffered, then in batches, one parquet file per
event-time hour under `<ResolvedOutputS3Uri>/year=YYYY/month=MM/day=DD/hour=HH/`, with `write_time`,
`api_invocation_time` and `is_deleted` beside the features. AWS writes PutRecord's data "into Amazon S3 within 15
minutes"; here a batch waits `offline_delay` seconds (a few by default, so that callers that start a run right
after PutRecord meet the lag here too), and `flush()` writes what waits at once (a graceful stop calls it).
boto3 reaches it through `AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sam_stack.offline_store import OfflineStore

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"
# seconds PutRecord's data waits before it reaches the offline store (AWS: up to 15 minutes)
DELAY_ENV = "LOCAL_OFFLINE_STORE_DELAY_SECONDS"
DEFAULT_DELAY = 3.0
LOG = logging.getLogger("local.featurestore")


def delay_seconds(value: float | None = None) -> float:
    """`value`, or DELAY_ENV's, or DEFAULT_DELAY: the offline store's delay in seconds (0: at once)."""
    if value is None:
        text = os.environ.get(DELAY_ENV, "")
        try:
            value = float(text) if text else DEFAULT_DELAY
        except ValueError:
            raise ValueError(f"{DELAY_ENV}: {text!r} is not a number of seconds") from None
    if not value >= 0:
        raise ValueError(f"{DELAY_ENV}: {value} is not a number of seconds >= 0")
    return value


class ServiceError(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Group:
    name: str
    identifier: str
    event_time: str
    types: dict[str, str]
    offline_uri: str | None
    offline: OfflineStore
    online: dict[str, dict[str, str]] = field(default_factory=dict)

    def convert(self, name: str, value: str) -> Any:
        kind = self.types[name]
        try:
            return int(value) if kind == "Integral" else float(value) if kind == "Fractional" else value
        except ValueError:
            raise ServiceError(HTTPStatus.BAD_REQUEST, "ValidationError", f"{name}: {value!r} is not {kind}") from None


@dataclass(frozen=True)
class Pending:
    """A record on its way to the offline store: its typed values, with its call's `api_invocation_time` and
    `is_deleted`."""

    group: Group
    values: dict[str, Any]


class OfflineWriter:
    """Feature Store's buffer between the calls and the offline store. The first record after a write opens a batch;
    every record that comes while it is open joins it; `delay` seconds after it opened, the batch goes to S3, one file
    per group and event-time hour. `delay` 0 writes each record as it comes. With a `journal`, every waiting record
    is also a line there until it is written, so a stack that is killed can write them when it starts again."""

    def __init__(self, s3: Any, delay: float, journal: Path | None = None) -> None:
        self.s3, self.delay, self.journal = s3, delay, journal
        self.pending: list[Pending] = []
        self.due: float | None = None
        self.closed = False
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="offline-store", daemon=True)
        self.thread.start()

    def add(self, item: Pending) -> None:
        if self.delay <= 0:
            self._write([item])
            return
        with self.condition:
            self.pending.append(item)
            if self.journal is not None:
                with self.journal.open("a", encoding="utf-8") as file:
                    file.write(_journal_line(item))
            if self.due is None:
                self.due = time.monotonic() + self.delay
                self.condition.notify()

    def waiting(self) -> int:
        """How many records wait for the next batch."""
        with self.condition:
            return len(self.pending)

    def flush(self) -> int:
        """Everything that waits, written now; how many records that was. A batch S3 refuses waits again."""
        with self.condition:
            batch, self.pending, self.due = self.pending, [], None
        try:
            self._write(batch)
        except Exception:
            with self.condition:
                self.pending = batch + self.pending
                self.due = self.due or time.monotonic() + max(self.delay, 1.0)
            raise
        if batch and self.journal is not None:
            with self.condition:  # what came during the write still waits
                self.journal.write_text("".join(map(_journal_line, self.pending)), encoding="utf-8")
        return len(batch)

    def close(self) -> int:
        """No more batches in the background; what waits is written now (how many)."""
        with self.condition:
            self.closed = True
            self.condition.notify()
        self.thread.join()
        return self.flush()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.closed and (self.due is None or time.monotonic() < self.due):
                    self.condition.wait(None if self.due is None else max(self.due - time.monotonic(), 0))
                if self.closed:
                    return
            try:
                self.flush()
            except Exception:
                LOG.exception("offline store batch not written")

    def _write(self, batch: list[Pending]) -> None:
        now = datetime.now(UTC)
        groups: dict[str, list[Pending]] = {}
        for item in batch:
            groups.setdefault(item.group.name, []).append(item)
        for items in groups.values():
            group = items[0].group
            location = urlparse(group.offline_uri or "")
            for records in group.offline.partitions([item.values for item in items]).values():
                key = f"{location.path.strip('/')}/{group.offline.file_key(records, now)}"
                body = group.offline.parquet(records, now)
                self.s3.put_object(Bucket=location.netloc, Key=key, Body=body)
        if batch:
            LOG.debug("offline store batch written", extra={"records": len(batch)})


def _journal_line(item: Pending) -> str:
    values = {**item.values, "api_invocation_time": item.values["api_invocation_time"].isoformat()}
    return json.dumps({"group": item.group.name, "values": values}) + "\n"


class FeatureStore:
    """The runtime's state and logic, independent of HTTP. `offline_delay`: seconds before PutRecord's data reaches
    the offline store (None: DELAY_ENV's, or DEFAULT_DELAY)."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str | None = None,
        *,
        offline_delay: float | None = None,
        journal: Path | None = None,
    ) -> None:
        single_try = Config(retries={"max_attempts": 1})
        self.sagemaker = boto3.client("sagemaker", endpoint_url=endpoint_url, region_name=region, config=single_try)
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.groups: dict[str, Group] = {}
        self.lock = threading.Lock()
        self.offline_writer = OfflineWriter(self.s3, delay_seconds(offline_delay), journal)

    def replay(self) -> int:
        """The records a killed stack's journal says were still on their way, waiting again (a full delay); how many.
        A record of a group that is gone is logged and left out."""
        journal = self.offline_writer.journal
        if journal is None or not journal.is_file():
            return 0
        lines = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines() if line.strip()]
        journal.write_text("", encoding="utf-8")
        for line in lines:
            try:
                group = self.group(line["group"])
            except ServiceError:
                LOG.warning("offline store record of a missing group left out", extra={"group": line["group"]})
                continue
            invoked = datetime.fromisoformat(line["values"]["api_invocation_time"])
            self.offline_writer.add(Pending(group, {**line["values"], "api_invocation_time": invoked}))
        return len(lines)

    def flush(self) -> int:
        """Every record still on its way to the offline store, written now (a graceful stop calls it before it
        saves the buckets); how many there were."""
        return self.offline_writer.flush()

    def close(self) -> int:
        return self.offline_writer.close()

    def group(self, name: str) -> Group:
        with self.lock:
            if name in self.groups:
                return self.groups[name]
        try:
            described = self.sagemaker.describe_feature_group(FeatureGroupName=name)
        except ClientError as error:
            # AWS says ResourceNotFound; moto 5.2 fails an unknown name with a bare 500 (and has no
            # ListFeatureGroups to look it up first), so both mean "no such group" here
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if (
                error.response.get("Error", {}).get("Code") != "ResourceNotFound"
                and status != HTTPStatus.INTERNAL_SERVER_ERROR
            ):
                raise
            raise ServiceError(HTTPStatus.NOT_FOUND, "ResourceNotFound", f"Feature group {name} not found") from None
        storage = described.get("OfflineStoreConfig", {}).get("S3StorageConfig", {})
        offline = OfflineStore.of(described["FeatureDefinitions"], described["EventTimeFeatureName"])
        group = Group(
            name=name,
            identifier=described["RecordIdentifierFeatureName"],
            event_time=described["EventTimeFeatureName"],
            types=dict(offline.features),
            offline_uri=storage.get("ResolvedOutputS3Uri") or storage.get("S3Uri"),
            offline=offline,
        )
        with self.lock:
            return self.groups.setdefault(name, group)

    def put(self, name: str, record: list[dict[str, str]], target_stores: list[str] | None) -> None:
        group = self.group(name)
        values = {item["FeatureName"]: item["ValueAsString"] for item in record}
        unknown = sorted(set(values) - set(group.types))
        if unknown:
            raise ServiceError(HTTPStatus.BAD_REQUEST, "ValidationError", f"Unknown features: {', '.join(unknown)}")
        for required in (group.identifier, group.event_time):
            if not values.get(required):
                raise ServiceError(HTTPStatus.BAD_REQUEST, "ValidationError", f"Missing feature {required}")
        typed = {feature: group.convert(feature, value) for feature, value in values.items()}
        stores = target_stores or ["OnlineStore", "OfflineStore"]
        if "OnlineStore" in stores:
            with self.lock:
                current = group.online.get(values[group.identifier])
                if current is None or float(current[group.event_time]) <= float(values[group.event_time]):
                    group.online[values[group.identifier]] = values
        if "OfflineStore" in stores and group.offline_uri:
            self._offline(group, typed, deleted=False)

    def get(self, name: str, identifier: str, features: list[str]) -> list[dict[str, str]] | None:
        group = self.group(name)
        with self.lock:
            values = group.online.get(identifier)
        if values is None:
            return None
        wanted = features or list(values)
        return [{"FeatureName": key, "ValueAsString": values[key]} for key in wanted if key in values]

    def delete(self, name: str, identifier: str, event_time: str) -> None:
        group = self.group(name)
        with self.lock:
            values = group.online.pop(identifier, None)
        if group.offline_uri:
            typed = {group.identifier: identifier, group.event_time: group.convert(group.event_time, event_time)}
            if values:
                typed = {**{k: group.convert(k, v) for k, v in values.items()}, **typed}
            self._offline(group, typed, deleted=True)

    def _offline(self, group: Group, typed: dict[str, Any], deleted: bool) -> None:
        invoked = {"api_invocation_time": datetime.now(UTC), "is_deleted": deleted}
        self.offline_writer.add(Pending(group, {**typed, **invoked}))


class Handler(BaseHTTPRequestHandler):
    store: FeatureStore  # set on the server's handler subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: requests are not news

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "FeatureGroup":
            raise ServiceError(HTTPStatus.NOT_FOUND, "UnknownOperation", f"no route for {url.path}")
        return unquote(parts[1]), parse_qs(url.query)

    def _answer(self, status: HTTPStatus, body: dict[str, Any] | None = None, error: str | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, action: str) -> None:
        try:
            name, query = self._route()
            if action == "PUT":
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self.store.put(name, body.get("Record") or [], body.get("TargetStores"))
                self._answer(HTTPStatus.OK)
            elif action == "GET":
                identifier = query.get("RecordIdentifierValueAsString", [""])[0]
                record = self.store.get(name, identifier, query.get("FeatureName", []))
                self._answer(HTTPStatus.OK, {"Record": record} if record else {})
            else:
                identifier = query.get("RecordIdentifierValueAsString", [""])[0]
                self.store.delete(name, identifier, query.get("EventTime", [""])[0])
                self._answer(HTTPStatus.OK)
        except ServiceError as error:
            self._answer(error.status, {"message": error.message}, error.code)
        except Exception as error:
            self._answer(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"message": f"{type(error).__name__}: {error}"}, "InternalFailure"
            )

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class FeatureStoreServer:
    """The runtime on 127.0.0.1 (port 0: any free port), served from a background thread."""

    def __init__(self, store: FeatureStore, port: int = 0) -> None:
        self.store = store
        handler = type("BoundHandler", (Handler,), {"store": store})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="featurestore", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FeatureStoreServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.store.close()

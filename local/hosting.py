"""SageMaker hosting on one machine: models, endpoint configs, endpoints and InvokeEndpoint.

An endpoint is the image's `serve` started from container/.venv on a loopback port, as SageMaker starts the
container: the model's `ModelDataUrl` downloaded and extracted into `/opt/ml/model` (a folder of the endpoint's
own, `OPT_ML_ROOT`), the model's environment set, `serve` run, and the endpoint `InService` once `/ping`
answers 200 (`Failed`, with the process's last words, if it never does: a model whose data cannot be extracted or
loaded fails its creation as on SageMaker). UpdateEndpoint starts the new config's server beside the old one and
switches when it is in service, or keeps the old one InService and says why in FailureReason, as SageMaker does
(DescribeEndpoint's FailureReason). A Failed endpoint takes only DeleteEndpoint, and a deleted endpoint is
`Deleting` for a moment (its name is not free yet), as on SageMaker. One process stands for all of a variant's
instances.

The SageMaker front (local.executor.server) answers the control-plane operations from here; `sagemaker-runtime`
InvokeEndpoint reaches `RuntimeServer` through `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from local.executor.jobs import IN_THIS_THREAD
from local.executor.records import ServiceError
from local.iam import enforce
from local.loopback import Loopback, Served
from sam_stack.container import CONTAINER, CONTAINER_BIN, container_environment

LOG = logging.getLogger("local.hosting")
RUNTIME_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"
START_SECONDS = 180  # SageMaker's container start-up health check allows several minutes
DELETE_SECONDS = 2.0  # SageMaker takes a while to delete an endpoint; code that recreates one must wait for it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One running `serve`: the container of one endpoint config."""

    config: str
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # serve stops gracefully on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Endpoint:
    name: str
    arn: str
    config: str
    status: str = "Creating"
    failure_reason: str | None = None
    pending: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    server: Server | None = None

    def describe(self, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        # a config deleted under its endpoint (SageMaker advises against it, and allows it) shows no variants
        variants = configs.get(self.config, {}).get("ProductionVariants", [])
        described: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointArn": self.arn,
            "EndpointConfigName": self.config,
            "ProductionVariants": [
                {
                    "VariantName": v["VariantName"],
                    "CurrentWeight": v.get("InitialVariantWeight", 1.0),
                    "CurrentInstanceCount": v.get("InitialInstanceCount", 1) if self.status == "InService" else 0,
                    "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                }
                for v in variants
            ],
            "EndpointStatus": self.status,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.failure_reason:
            described["FailureReason"] = self.failure_reason
        if self.pending:
            described["PendingDeploymentSummary"] = {"EndpointConfigName": self.pending, "StartTime": self.modified}
        return described


class Hosting:
    """The hosting operations, by name, and the endpoints' servers. `sagemaker` and `s3` are moto's clients."""

    def __init__(
        self, sagemaker: Any, s3: Any, work: Path, *, environment: dict[str, str], region: str, account: str
    ) -> None:
        self.sagemaker, self.s3, self.work, self.environment = sagemaker, s3, work / "endpoints", environment
        self.region, self.account = region, account
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.lock = threading.Lock()
        self.operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateModel": self.create_model,
            "DescribeModel": lambda r: self._model(r["ModelName"]),
            "DeleteModel": lambda r: self._delete(self.models, r["ModelName"], "model"),
            "CreateEndpointConfig": self.create_config,
            "DescribeEndpointConfig": lambda r: self._config(r["EndpointConfigName"]),
            "DeleteEndpointConfig": lambda r: self._delete(self.configs, r["EndpointConfigName"], "endpoint-config"),
            "ListModels": lambda r: {"Models": [self._model_summary(m) for m in _listed(self.models, r)]},
            "ListEndpointConfigs": lambda r: {"EndpointConfigs": [self._summary(c) for c in _listed(self.configs, r)]},
            "CreateEndpoint": self.create_endpoint,
            "UpdateEndpoint": self.update_endpoint,
            "DescribeEndpoint": lambda r: self._endpoint(r["EndpointName"]).describe(self.configs),
            "DeleteEndpoint": self.delete_endpoint,
            "ListEndpoints": lambda r: {"Endpoints": [self._endpoint_summary(e) for e in self.endpoints.values()]},
        }

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    # ---------- models and configs ----------

    def create_model(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        if name in self.models:
            raise ServiceError(
                "ValidationException", f'Cannot create already existing model "{self.arn("model", name)}".'
            )
        given = request.get("Containers") or [request.get("PrimaryContainer") or {}]
        containers = [self._container(c) for c in given]
        self.models[name] = {
            "ModelName": name,
            "ModelArn": self.arn("model", name),
            "ExecutionRoleArn": request["ExecutionRoleArn"],
            "Containers": containers,
            "PrimaryContainer": containers[0],
            "CreationTime": datetime.now(UTC),
        }
        return {"ModelArn": self.arn("model", name)}

    def _container(self, given: dict[str, Any]) -> dict[str, Any]:
        """A container definition; one that names a model package takes the package's image, data and environment."""
        package = given.get("ModelPackageName")
        if not package:
            return dict(given)
        try:
            described = self.sagemaker.describe_model_package(ModelPackageName=package)
        except Exception as error:
            raise ServiceError("ValidationException", f"Could not find model package {package}: {error}") from None
        [spec] = described["InferenceSpecification"]["Containers"][:1]
        return {
            "Image": spec["Image"],
            "ModelDataUrl": spec.get("ModelDataUrl"),
            "Environment": {**spec.get("Environment", {}), **given.get("Environment", {})},
            "ModelPackageName": package,
        }

    def create_config(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        if name in self.configs:
            arn = self.arn("endpoint-config", name)
            raise ServiceError("ValidationException", f'Cannot create already existing endpoint configuration "{arn}".')
        for variant in request["ProductionVariants"]:
            self._model(variant["ModelName"])
        self.configs[name] = {
            "EndpointConfigName": name,
            "EndpointConfigArn": self.arn("endpoint-config", name),
            "ProductionVariants": request["ProductionVariants"],
            "CreationTime": datetime.now(UTC),
        }
        return {"EndpointConfigArn": self.arn("endpoint-config", name)}

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise ServiceError("ValidationException", f'Could not find model "{self.arn("model", name)}".')
        return self.models[name]

    def _config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            arn = self.arn("endpoint-config", name)
            raise ServiceError("ValidationException", f'Could not find endpoint configuration "{arn}".')
        return self.configs[name]

    def _delete(self, table: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
        if table.pop(name, None) is None:
            raise ServiceError("ValidationException", f'Could not find {kind} "{self.arn(kind, name)}".')
        return {}

    @staticmethod
    def _model_summary(model: dict[str, Any]) -> dict[str, Any]:
        return {key: model[key] for key in ("ModelName", "ModelArn", "CreationTime")}

    @staticmethod
    def _summary(config: dict[str, Any]) -> dict[str, Any]:
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return {key: config[key] for key in keys}

    # ---------- endpoints ----------

    def _endpoint(self, name: str) -> Endpoint:
        with self.lock:
            endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ServiceError("ValidationException", f'Could not find endpoint "{self.arn("endpoint", name)}".')
        return endpoint

    def _endpoint_summary(self, endpoint: Endpoint) -> dict[str, Any]:
        described = endpoint.describe(self.configs)
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return {key: described[key] for key in keys}

    def create_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config = request["EndpointName"], request["EndpointConfigName"]
        self._config(config)
        with self.lock:
            if name in self.endpoints:
                arn = self.arn("endpoint", name)
                raise ServiceError("ValidationException", f'Cannot create already existing endpoint "{arn}".')
            endpoint = self.endpoints[name] = Endpoint(name, self.arn("endpoint", name), config)
        threading.Thread(target=self._bring_up, args=(endpoint, config), daemon=True, name=f"endpoint-{name}").start()
        return {"EndpointArn": endpoint.arn}

    def update_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint, config = self._endpoint(request["EndpointName"]), request["EndpointConfigName"]
        self._config(config)
        with self.lock:
            if endpoint.status == "Failed":  # DescribeEndpoint's EndpointStatus: Failed takes only DeleteEndpoint
                raise ServiceError(
                    "ValidationException",
                    f'Cannot update failed endpoint "{endpoint.arn}": DeleteEndpoint is the only operation that can be '
                    "performed on a failed endpoint.",
                )
            if endpoint.status != "InService":
                raise ServiceError(
                    "ValidationException", f'Cannot update in-progress endpoint "{endpoint.arn}" ({endpoint.status}).'
                )
            endpoint.status, endpoint.pending, endpoint.modified = "Updating", config, datetime.now(UTC)
            endpoint.failure_reason = None
        threading.Thread(
            target=self._bring_up, args=(endpoint, config), daemon=True, name=f"update-{endpoint.name}"
        ).start()
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(request["EndpointName"])
        with self.lock:
            if endpoint.status == "Deleting":
                raise ServiceError("ValidationException", f'Cannot delete in-progress endpoint "{endpoint.arn}".')
            endpoint.status, endpoint.modified = "Deleting", datetime.now(UTC)
        threading.Thread(target=self._take_down, args=(endpoint,), daemon=True, name=f"delete-{endpoint.name}").start()
        return {}

    def _take_down(self, endpoint: Endpoint) -> None:
        if endpoint.server is not None:
            endpoint.server.stop()
        time.sleep(DELETE_SECONDS)
        with self.lock:
            if self.endpoints.get(endpoint.name) is endpoint:
                del self.endpoints[endpoint.name]

    def _bring_up(self, endpoint: Endpoint, config: str) -> None:
        """Start `config`'s server; switch the endpoint to it when it is in service."""
        try:
            server = self._start(endpoint.name, config)
        except Exception as error:  # the container never became healthy
            LOG.warning("endpoint %s: %s", endpoint.name, error)
            with self.lock:
                if endpoint.status == "Deleting":
                    return
                if endpoint.status == "Updating":  # SageMaker keeps the old config serving
                    endpoint.status, endpoint.pending = "InService", None
                    endpoint.failure_reason = f"Update to {config} failed: {error}"[:1024]
                else:
                    endpoint.status, endpoint.failure_reason = "Failed", str(error)[:1024]
                endpoint.modified = datetime.now(UTC)
            return
        with self.lock:
            current = self.endpoints.get(endpoint.name) is endpoint and endpoint.status != "Deleting"
            if current:
                previous, endpoint.server = endpoint.server, server
                endpoint.config, endpoint.pending, endpoint.status = config, None, "InService"
                endpoint.modified = datetime.now(UTC)
        if not current:  # deleted while it was starting
            server.stop()
        elif previous is not None:
            previous.stop()

    def _start(self, endpoint: str, config: str) -> Server:
        [variant] = self.configs[config]["ProductionVariants"][:1]
        [container] = self.models[variant["ModelName"]]["Containers"][:1]
        folder = self.work / endpoint / config
        shutil.rmtree(folder, ignore_errors=True)
        model_dir = folder / "model"
        model_dir.mkdir(parents=True)
        if container.get("ModelDataUrl"):
            bucket, _, key = container["ModelDataUrl"].removeprefix("s3://").partition("/")
            archive = folder / "model.tar.gz"
            try:
                # SageMaker reads the model's data as the role the model was created with
                model_role = enforce.identity_of(self.models[variant["ModelName"]].get("ExecutionRoleArn"))
                with enforce.acting_as(model_role):
                    self.s3.download_file(bucket, key, str(archive), Config=IN_THIS_THREAD)
            except Exception as error:
                raise RuntimeError(f"the model data {container['ModelDataUrl']} cannot be read: {error}") from None
            try:
                with tarfile.open(archive) as tar:
                    tar.extractall(model_dir, filter="data")  # what SageMaker extracts to /opt/ml/model
            except (tarfile.TarError, OSError) as error:
                raise RuntimeError(f"the model data {container['ModelDataUrl']} cannot be extracted: {error}") from None
        port = _free_port()
        environment = container_environment(
            self.environment,
            dict(container.get("Environment", {})),
            {
                "OPT_ML_ROOT": str(folder),
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "PATH": f"{CONTAINER_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            },
        )
        log = (folder / "serve.log").open("wb")
        # the image's own entry point, as `docker run IMAGE serve`
        process = subprocess.Popen([str(CONTAINER / "bin" / "serve")], env=environment, stdout=log, stderr=log)  # noqa: S603
        server = Server(config, folder, port, process)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the container exited ({process.returncode}): {_tail(folder / 'serve.log')}")
            try:
                with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as answer:  # noqa: S310 (loopback)
                    if answer.status == 200:
                        return server
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        server.stop()
        raise RuntimeError(f"the container did not pass the /ping health check in {START_SECONDS} s")

    def invoke(self, name: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """InvokeEndpoint: the body and its headers to the endpoint's container, as SageMaker's front does."""
        with self.lock:
            endpoint = self.endpoints.get(name)
        if endpoint is None or endpoint.server is None:
            state = "not found" if endpoint is None else f"not in service ({endpoint.status})"
            return _runtime_error(400, "ValidationException", f"Endpoint {name} of account {self.account} {state}.")
        forwarded = {
            k: v
            for k, v in headers.items()
            if k.lower() in {"content-type", "accept", "x-amzn-sagemaker-custom-attributes"}
        }
        url = f"{endpoint.server.url}/invocations"
        request = urllib.request.Request(url, data=body, headers=forwarded, method="POST")  # noqa: S310 (loopback)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (loopback)
                data = answer.read()
                kind = answer.headers.get("Content-Type", "application/octet-stream")
                return 200, {"Content-Type": kind, "x-Amzn-Invoked-Production-Variant": "AllTraffic"}, data
        except urllib.error.HTTPError as error:
            message = error.read().decode(errors="replace")
            # SageMaker passes the container's 4xx/5xx on as a ModelError (424) naming its status and message
            side = "client" if error.code < 500 else "server"
            text = f'Received {side} error ({error.code}) from primary with message "{message}".'
            return _runtime_error(424, "ModelError", text, OriginalStatusCode=error.code, OriginalMessage=message)

    def stop(self) -> None:
        with self.lock:
            servers = [e.server for e in self.endpoints.values() if e.server is not None]
        for server in servers:
            server.stop()

    def save(self, path: Path) -> None:
        """Models, configs and each endpoint's config in service, for `restore` after a restart (`make down`)."""
        with self.lock:
            endpoints = [{"name": e.name, "config": e.config} for e in self.endpoints.values()]
        state = {"models": self.models, "configs": self.configs, "endpoints": endpoints}
        path.write_text(json.dumps(state, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))

    def restore(self, path: Path) -> None:
        """What `save` kept; every endpoint starts again (Creating, then InService), as after an instance restart."""
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        for table, saved in ((self.models, state["models"]), (self.configs, state["configs"])):
            for name, item in saved.items():
                table[name] = {**item, "CreationTime": datetime.fromisoformat(item["CreationTime"])}
        for saved_endpoint in state["endpoints"]:
            name, config = saved_endpoint["name"], saved_endpoint["config"]
            endpoint = self.endpoints[name] = Endpoint(name, self.arn("endpoint", name), config)
            threading.Thread(
                target=self._bring_up, args=(endpoint, config), daemon=True, name=f"endpoint-{name}"
            ).start()


def _listed(table: dict[str, dict[str, Any]], request: dict[str, Any]) -> list[dict[str, Any]]:
    """The items a List call's NameContains and CreationTime filters keep (one page: the local stack holds few)."""
    contains, before, after = (request.get(k) for k in ("NameContains", "CreationTimeBefore", "CreationTimeAfter"))
    return [
        item
        for name, item in table.items()
        if (not contains or contains in name)
        and (before is None or item["CreationTime"] < _moment(before))
        and (after is None or item["CreationTime"] > _moment(after))
    ]


def _moment(value: Any) -> datetime:
    """A timestamp of a JSON request: epoch seconds, as botocore sends it, or ISO text."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value))


def _runtime_error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"message": message, **extra}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code}, body


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class RuntimeServer(Served):
    """sagemaker-runtime on loopback: POST /endpoints/{name}/invocations."""

    def __init__(self, hosting: Hosting) -> None:
        self.hosting = hosting
        self.loopback = Loopback(self._respond, name="sagemaker-runtime")

    def _respond(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = path.split("?")[0].strip("/").split("/")
        if method != "POST" or len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
            return _runtime_error(404, "UnknownOperationException", f"no operation {method} {path}")
        return self.hosting.invoke(unquote(parts[1]), body, headers)

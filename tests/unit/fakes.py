"""In-memory stand-ins for the adapters (control_plane.ports), for tests with no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from control_plane.errors import NotFound
from control_plane.models import AuditEntry

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
DECLARED: list[dict[str, Any]] = [
    {"Name": "NumEpochs", "Type": "Integer", "DefaultValue": 100},
    {"Name": "LearningRate", "Type": "Float", "DefaultValue": 0.002},
    {
        "Name": "Backbone",
        "Type": "String",
        "DefaultValue": "mobilenet0.25",
        "EnumValues": ["mobilenet0.25", "darknet53"],
    },
    {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.c5.4xlarge"},
    {"Name": "MapThreshold", "Type": "Float", "DefaultValue": 0.3},
    {"Name": "DataAsOf", "Type": "String", "DefaultValue": ""},
]


@dataclass
class FakePipelines:
    name: str = "scratch-detector"
    executions: list[dict[str, Any]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    step_list: list[dict[str, Any]] = field(default_factory=list)
    page_size_seen: list[int] = field(default_factory=list)

    def execution_arn(self, run_id: str) -> str:
        return f"{ARN}:pipeline/{self.name}/execution/{run_id}"

    def add(self, run_id: str, status: str, minutes_ago: int = 0) -> None:
        self.executions.insert(
            0,
            {
                "PipelineExecutionArn": self.execution_arn(run_id),
                "PipelineExecutionStatus": status,
                "StartTime": datetime(2026, 11, 26, tzinfo=UTC) - timedelta(minutes=minutes_ago),
                "CreationTime": datetime(2026, 11, 26, tzinfo=UTC) - timedelta(minutes=minutes_ago),
                "LastModifiedTime": datetime(2026, 11, 26, tzinfo=UTC),
            },
        )

    def declared_parameters(self) -> list[dict[str, Any]]:
        return DECLARED

    def start(self, parameters: dict[str, str], display_name: str | None, description: str, token: str) -> str:
        run_id = f"run{len(self.started):09d}"
        self.started.append(
            {
                "parameters": parameters,
                "display_name": display_name,
                "description": description,
                "token": token,
                "run_id": run_id,
            }
        )
        self.add(run_id, "Executing")
        return self.execution_arn(run_id)

    def list_executions(self, next_token: str | None, page_size: int) -> tuple[list[dict[str, Any]], str | None]:
        # pages of three, whatever is asked, to exercise the cursor across service pages
        self.page_size_seen.append(page_size)
        start = int(next_token or 0)
        page = self.executions[start : start + 3]
        return page, str(start + 3) if start + 3 < len(self.executions) else None

    def describe_execution(self, execution_arn: str) -> dict[str, Any]:
        for execution in self.executions:
            if execution["PipelineExecutionArn"] == execution_arn:
                return dict(execution)
        raise NotFound(f"run {execution_arn.rsplit('/', 1)[-1]} does not exist")

    def execution_parameters(self, execution_arn: str) -> dict[str, str]:
        return {"NumEpochs": "100"}

    def steps(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.step_list

    def stop(self, execution_arn: str, token: str) -> None:
        self.calls.append(("stop", execution_arn, token))

    def retry(self, execution_arn: str, token: str) -> None:
        self.calls.append(("retry", execution_arn, token))

    def training_job(self, job_name: str) -> dict[str, Any]:
        return {
            "TrainingJobName": job_name,
            "FinalMetricDataList": [{"MetricName": "train:map", "Value": 0.7}],
            "ModelArtifacts": {"S3ModelArtifacts": f"s3://bucket/{job_name}/output/model.tar.gz"},
            "ResourceConfig": {"InstanceType": "ml.c5.4xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
            "EnableManagedSpotTraining": True,
            "TrainingTimeInSeconds": 1800,
            "BillableTimeInSeconds": 720,
        }

    def processing_job(self, job_name: str) -> dict[str, Any]:
        # every output in one folder, as the tests read it
        outputs = [
            {"OutputName": name, "S3Output": {"S3Uri": "s3://bucket/evaluation"}} for name in ("evaluation", "report")
        ]
        return {
            "ProcessingJobName": job_name,
            "ProcessingOutputConfig": {"Outputs": outputs},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
            "ProcessingStartTime": datetime(2026, 11, 26, 10, tzinfo=UTC),
            "ProcessingEndTime": datetime(2026, 11, 26, 10, 10, tzinfo=UTC),
        }


@dataclass
class FakeRegistry:
    group: str = "scratch-detector"
    packages: dict[int, dict[str, Any]] = field(default_factory=dict)
    updates: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, version: int, status: str = "PendingManualApproval", test_map: str = "0.73") -> None:
        self.packages[version] = {
            "ModelPackageVersion": version,
            "ModelPackageArn": f"{ARN}:model-package/{self.group}/{version}",
            "ModelApprovalStatus": status,
            "InferenceSpecification": {
                "Containers": [{"Image": "image", "ModelDataUrl": f"s3://bucket/v{version}/model.tar.gz"}]
            },
            "CustomerMetadataProperties": {
                "TestMap": test_map,
                "MapThreshold": "0.3",
                "PipelineExecutionArn": f"{ARN}:pipeline/p/execution/abcdef123456",
            },
        }

    def list_packages(
        self, status: str | None, next_token: str | None, page_size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        chosen = [
            p
            for _, p in sorted(self.packages.items(), reverse=True)
            if not status or p["ModelApprovalStatus"] == status
        ]
        return chosen[:page_size], None

    def describe(self, version: int) -> dict[str, Any]:
        if version not in self.packages:
            raise NotFound(f"model version {version} does not exist in {self.group}")
        return dict(self.packages[version])

    def describe_arn(self, arn: str) -> dict[str, Any]:
        return self.describe(int(arn.rsplit("/", 1)[-1]))

    def set_approval(self, arn: str, status: str, description: str) -> None:
        self.updates.append((arn, status, description))
        version = int(arn.rsplit("/", 1)[-1])
        self.packages[version] = {
            **self.packages[version],
            "ModelApprovalStatus": status,
            "ApprovalDescription": description,
        }


@dataclass
class FakeAudit:
    entries: list[AuditEntry] = field(default_factory=list)

    keys: set[str] = field(default_factory=set)

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    def record_once(self, entry: AuditEntry, key: str) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        self.entries.append(entry)
        return True

    def history(
        self, subject: str, next_token: str | None, limit: int, newest_first: bool
    ) -> tuple[list[AuditEntry], str | None]:
        chosen = sorted((e for e in self.entries if e.subject == subject), key=lambda e: e.at, reverse=newest_first)
        start = int(next_token or 0)
        return chosen[start : start + limit], str(start + limit) if start + limit < len(chosen) else None


@dataclass
class FakePresigner:
    """Presigns what `objects` holds, as a URL that says what it is for."""

    objects: set[str] = field(default_factory=set)
    expires_seconds: int = 900

    def presign(self, uri: str) -> str | None:
        return (
            f"https://signed/{uri.removeprefix('s3://')}?expires={self.expires_seconds}"
            if uri in self.objects
            else None
        )


@dataclass
class FakeHosting:
    """SageMaker hosting for one endpoint: models, configs and the endpoint as plain dicts. `refuse` maps an operation
    to the error SageMaker answers it with; with `deletion_lags`, a deleted endpoint stays `Deleting` past any wait."""

    endpoint: str = "scratch-detector"
    models: dict[str, str] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    described: dict[str, Any] | None = None
    refuse: dict[str, Exception] = field(default_factory=dict)
    deletion_lags: bool = False
    calls: list[str] = field(default_factory=list)
    # when each model and config was made (a name not here: an hour ago)
    made: dict[str, datetime] = field(default_factory=dict)

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.refuse:
            raise self.refuse[operation]

    def describe_endpoint(self) -> dict[str, Any] | None:
        return None if self.described is None else dict(self.described)

    def describe_config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            raise NotFound(f"Could not find endpoint configuration {name}")
        return self.configs[name]

    def create_model(self, name: str, package_arn: str) -> None:
        self._call("CreateModel")
        self.models[name] = package_arn
        self.made[name] = datetime.now(UTC)

    def create_config(self, name: str, *, model: str, instance_type: str, count: int, version: int) -> None:
        self._call("CreateEndpointConfig")
        variant = {"ModelName": model, "InstanceType": instance_type, "InitialInstanceCount": count}
        self.configs[name] = {"EndpointConfigName": name, "ProductionVariants": [variant]}
        self.made[name] = datetime.now(UTC)

    def create_endpoint(self, config: str) -> None:
        self._call("CreateEndpoint")
        self.described = {"EndpointName": self.endpoint, "EndpointConfigName": config, "EndpointStatus": "Creating"}

    def update_endpoint(self, config: str) -> None:
        self._call("UpdateEndpoint")
        assert self.described is not None
        self.described = {**self.described, "EndpointStatus": "Updating"}

    def delete_endpoint(self) -> None:
        self._call("DeleteEndpoint")
        assert self.described is not None
        self.described = {**self.described, "EndpointStatus": "Deleting"} if self.deletion_lags else None

    def delete_config(self, name: str) -> None:
        self._call("DeleteEndpointConfig")
        del self.configs[name]

    def delete_model(self, name: str) -> None:
        self._call("DeleteModel")
        del self.models[name]

    def wait_deleted(self, seconds: float) -> bool:
        return self.described is None

    def _listed(self, table: dict[str, Any], name_contains: str, before: datetime) -> dict[str, datetime]:
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        made = {name: self.made.get(name, an_hour_ago) for name in table if name_contains in name}
        return {name: at for name, at in made.items() if at < before}

    def list_configs(self, name_contains: str, before: datetime) -> dict[str, datetime]:
        self._call("ListEndpointConfigs")
        return self._listed(self.configs, name_contains, before)

    def list_models(self, name_contains: str, before: datetime) -> dict[str, datetime]:
        self._call("ListModels")
        return self._listed(self.models, name_contains, before)

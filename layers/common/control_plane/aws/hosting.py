"""SageMaker hosting for the stack's one real-time endpoint: models made from model packages, endpoint configs,
the endpoint itself. A request SageMaker refuses is raised as the domain error of its meaning
(control_plane.aws.errors.refused_by_sagemaker), with SageMaker's message."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from control_plane.aws.clients import LazyClient
from control_plane.aws.errors import refused_by_sagemaker

# SageMaker answers a missing endpoint or config with ValidationException "Could not find ..."
_MISSING = ("Could not find", "does not exist", "not found")
POLL_SECONDS = 1.0


class Hosting:
    _sm = LazyClient("sagemaker")

    def __init__(
        self, endpoint: str, role_arn: str, *, tags: list[dict[str, str]] | None = None, sagemaker: Any = None
    ) -> None:
        self.endpoint, self.role_arn, self.tags = endpoint, role_arn, tags or []
        self._client = sagemaker

    def describe_endpoint(self) -> dict[str, Any] | None:
        with refused_by_sagemaker("DescribeEndpoint"):
            try:
                return dict(self._sm.describe_endpoint(EndpointName=self.endpoint))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ValidationException" and any(
                    words in str(error) for words in _MISSING
                ):
                    return None
                raise

    def describe_config(self, name: str) -> dict[str, Any]:
        with refused_by_sagemaker("DescribeEndpointConfig"):
            return dict(self._sm.describe_endpoint_config(EndpointConfigName=name))

    def create_model(self, name: str, package_arn: str) -> None:
        # the package's container (image, model data, environment) is the model's
        with refused_by_sagemaker("CreateModel"):
            self._sm.create_model(
                ModelName=name,
                ExecutionRoleArn=self.role_arn,
                Containers=[{"ModelPackageName": package_arn}],
                Tags=self.tags,
            )

    def create_config(self, name: str, *, model: str, instance_type: str, count: int, version: int) -> None:
        with refused_by_sagemaker("CreateEndpointConfig"):
            self._sm.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": model,
                        "InstanceType": instance_type,
                        "InitialInstanceCount": count,
                        "InitialVariantWeight": 1.0,
                    }
                ],
                Tags=[*self.tags, {"Key": "ModelVersion", "Value": str(version)}],
            )

    def create_endpoint(self, config: str) -> None:
        with refused_by_sagemaker("CreateEndpoint"):
            self._sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName=config, Tags=self.tags)

    def update_endpoint(self, config: str) -> None:
        # SageMaker starts the new config's instances and keeps serving the old ones until they are in service
        with refused_by_sagemaker("UpdateEndpoint"):
            self._sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=config)

    def delete_endpoint(self) -> None:
        with refused_by_sagemaker("DeleteEndpoint"):
            self._sm.delete_endpoint(EndpointName=self.endpoint)

    def delete_config(self, name: str) -> None:
        with refused_by_sagemaker("DeleteEndpointConfig"):
            self._sm.delete_endpoint_config(EndpointConfigName=name)

    def delete_model(self, name: str) -> None:
        with refused_by_sagemaker("DeleteModel"):
            self._sm.delete_model(ModelName=name)

    def wait_deleted(self, seconds: float) -> bool:
        """True once DescribeEndpoint finds no endpoint, False if it is still there after `seconds`."""
        deadline = time.monotonic() + seconds
        while self.describe_endpoint() is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def list_configs(self, name_contains: str, before: datetime) -> dict[str, datetime]:
        with refused_by_sagemaker("ListEndpointConfigs"):
            pages = self._sm.get_paginator("list_endpoint_configs").paginate(
                NameContains=name_contains, CreationTimeBefore=before
            )
            return {c["EndpointConfigName"]: c["CreationTime"] for page in pages for c in page["EndpointConfigs"]}

    def list_models(self, name_contains: str, before: datetime) -> dict[str, datetime]:
        with refused_by_sagemaker("ListModels"):
            paginator = self._sm.get_paginator("list_models")
            pages = paginator.paginate(NameContains=name_contains, CreationTimeBefore=before)
            return {m["ModelName"]: m["CreationTime"] for page in pages for m in page["Models"]}

"""SageMaker hosting for the stack's one real-time endpoint: models made from model packages, endpoint configs,
the endpoint itself."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from control_plane.aws.clients import LazyClient

# SageMaker answers a missing endpoint or config with ValidationException "Could not find ..."
_MISSING = ("Could not find", "does not exist", "not found")


class Hosting:
    _sm = LazyClient("sagemaker")

    def __init__(
        self, endpoint: str, role_arn: str, *, tags: list[dict[str, str]] | None = None, sagemaker: Any = None
    ) -> None:
        self.endpoint, self.role_arn, self.tags = endpoint, role_arn, tags or []
        self._client = sagemaker

    def describe_endpoint(self) -> dict[str, Any] | None:
        try:
            return dict(self._sm.describe_endpoint(EndpointName=self.endpoint))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationException" and any(
                words in str(error) for words in _MISSING
            ):
                return None
            raise

    def describe_config(self, name: str) -> dict[str, Any]:
        return dict(self._sm.describe_endpoint_config(EndpointConfigName=name))

    def create_model(self, name: str, package_arn: str) -> None:
        # the package's container (image, model data, environment) is the model's
        self._sm.create_model(
            ModelName=name,
            ExecutionRoleArn=self.role_arn,
            Containers=[{"ModelPackageName": package_arn}],
            Tags=self.tags,
        )

    def create_config(self, name: str, *, model: str, instance_type: str, count: int, version: int) -> None:
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
        self._sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName=config, Tags=self.tags)

    def update_endpoint(self, config: str) -> None:
        # SageMaker starts the new config's instances and keeps serving the old ones until they are in service
        self._sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=config)

    def delete_endpoint(self) -> None:
        self._sm.delete_endpoint(EndpointName=self.endpoint)

"""SageMaker calls the product makes that moto 5.2 lacks: DeleteModelPackage and DeleteModelPackageGroup
(`make destroy` removes the registry), and DescribeFeatureGroup's ResourceNotFound for a group that is not
there (moto answers a 500). Installed on moto's own classes, so the server and `mock_aws` both answer them;
everything else stays moto's."""

from __future__ import annotations

from typing import Any

from moto.core.responses import EmptyResult
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse


def _delete_model_package(backend: SageMakerModelBackend, name: str) -> None:
    arn = backend.model_package_name_mapping.get(name, name)
    if backend.model_packages.pop(arn, None) is None:
        raise ValidationError(f"Model package {name} not found")
    for key in [k for k, v in backend.model_package_name_mapping.items() if v == arn]:
        del backend.model_package_name_mapping[key]


def _delete_model_package_group(backend: SageMakerModelBackend, name: str) -> None:
    group = backend.describe_model_package_group(name)  # ValidationError when there is none, as SageMaker
    del backend.model_package_groups[group.model_package_group_name]


def _delete_model_package_response(self: SageMakerResponse) -> EmptyResult:
    _delete_model_package(self.sagemaker_backend, self._get_param("ModelPackageName"))
    return EmptyResult()


def _delete_model_package_group_response(self: SageMakerResponse) -> EmptyResult:
    _delete_model_package_group(self.sagemaker_backend, self._get_param("ModelPackageGroupName"))
    return EmptyResult()


_describe_feature_group = SageMakerModelBackend.describe_feature_group


def _describe_feature_group_or_not_found(self: SageMakerModelBackend, feature_group_name: str) -> dict[str, Any]:
    try:
        return _describe_feature_group(self, feature_group_name)
    except KeyError:
        raise ResourceNotFound(f"Resource Not Found: FeatureGroup {feature_group_name} not found") from None


def install() -> None:
    """Idempotent: moto's classes gain the operations once per process."""
    SageMakerModelBackend.describe_feature_group = _describe_feature_group_or_not_found  # type: ignore[method-assign]
    SageMakerResponse.delete_model_package = _delete_model_package_response  # type: ignore[attr-defined]
    SageMakerResponse.delete_model_package_group = _delete_model_package_group_response  # type: ignore[attr-defined]

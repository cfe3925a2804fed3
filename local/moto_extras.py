"""SageMaker calls the product makes that moto 5.2 lacks: DeleteModelPackage and DeleteModelPackageGroup
(`make destroy` removes the registry). Installed on moto's own classes, so the server and `mock_aws` both
answer them; everything else stays moto's."""

from __future__ import annotations

from moto.core.responses import EmptyResult
from moto.sagemaker.exceptions import ValidationError
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


def install() -> None:
    """Idempotent: moto's classes gain the two operations once per process."""
    SageMakerResponse.delete_model_package = _delete_model_package_response  # type: ignore[attr-defined]
    SageMakerResponse.delete_model_package_group = _delete_model_package_group_response  # type: ignore[attr-defined]

"""SageMaker calls the product makes that moto 5.2 lacks or gets wrong: DeleteModelPackage and
DeleteModelPackageGroup (`make destroy` removes the registry), DescribeFeatureGroup's ResourceNotFound for a group
that is not there (moto answers a 500), and UpdateModelPackage, which in moto drops a package's
CustomerMetadataProperties when the request does not repeat them (SageMaker keeps them: the request's own field
"customer metadata properties to add or update") or leaves an empty map on a package that has none (SageMaker
leaves the member out, and CreateModelPackage refuses an empty one), and names a made-up Studio user as
LastModifiedBy, where SageMaker names the caller's IAM identity (UserContext.IamIdentity: Arn, PrincipalId), which
the package's state-change event carries too; DescribeProcessingJob, which in moto leaves out the job's
ProcessingResources and start time. And S3's ListObjectVersions, which moto answers by deep-copying every version of
every key of the bucket, values included, whatever the prefix: Preprocess lists one image's versions per image (as of
DataAsOf), and over a bucket of checkpoints and model archives that filled the disk; here only the keys under the
prefix are copied (the answer is the same: moto skips the others after copying them). Installed on moto's own
classes, so the server and `mock_aws` both answer them; everything else stays moto's."""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import EmptyResult
from moto.s3.models import S3Backend
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sts.models import sts_backends


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


_update_model_package = SageMakerModelBackend.update_model_package


def _update_keeping_metadata(self: SageMakerModelBackend, **request: Any) -> str:
    """moto's update, called as its response handler calls it (by keyword), with the metadata merged back."""
    arn = request["model_package_arn"]
    package = self.model_packages.get(self.model_package_name_mapping.get(arn, arn))
    kept = dict(package.customer_metadata_properties or {}) if package is not None else {}
    updated = _update_model_package(self, **request)
    if package is not None:
        merged = {**kept, **(request.get("customer_metadata_properties") or {})}
        removed = set(request.get("customer_metadata_properties_to_remove") or [])
        kept_after = {k: v for k, v in merged.items() if k not in removed}
        # a package that has none answers without the member, as SageMaker does, not with an empty map
        package.customer_metadata_properties = kept_after or None
    return updated


_update_model_package_response = SageMakerResponse.update_model_package
# SigV4's credential scope starts with the access key (moto's own pattern wants 20 capitals; local keys are words)
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")


def _caller(response: SageMakerResponse) -> dict[str, str]:
    """The request's IAM identity: a role session or user moto issued the key to, else the IAM user named by the
    key (as local/api.py names the API's callers)."""
    signed = _CREDENTIAL.search(response.headers.get("Authorization", ""))
    key, account = signed.group(1) if signed else response.get_access_key(), response.current_account
    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
    if assumed is not None:
        return {"Arn": assumed.arn, "PrincipalId": assumed.user_id}
    return {"Arn": f"arn:aws:iam::{account}:user/{key}", "PrincipalId": key}


def _update_naming_the_caller(self: SageMakerResponse) -> Any:
    answer = _update_model_package_response(self)
    backend, arn = self.sagemaker_backend, self._get_param("ModelPackageArn")
    package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
    if package is not None:
        # moto types UserContext as flat strings; SageMaker's IamIdentity is a structure
        package.last_modified_by = {"IamIdentity": _caller(self)}  # type: ignore[dict-item]
    return answer


def _create_processing_job_keeping_resources(self: SageMakerResponse) -> Any:
    """moto drops the request's ProcessingResources, which DescribeProcessingJob must answer (a required member),
    and answers an end time without a start: a job it calls Completed ran from its creation to its end."""
    result = _MOTO_CREATE_PROCESSING_JOB(self)
    job = self.sagemaker_backend.processing_jobs[self._get_param("ProcessingJobName")]
    vars(job).update(
        processing_resources=self._get_param("ProcessingResources"), processing_start_time=job.creation_time
    )
    return result


_MOTO_CREATE_PROCESSING_JOB = SageMakerResponse.create_processing_job
_MOTO_LIST_OBJECT_VERSIONS = S3Backend.list_object_versions


class _KeysUnder:
    """A bucket's versioned keys as moto's listing reads them (`iterlists`), limited to the names under a prefix."""

    def __init__(self, keys: Any, prefix: str) -> None:
        self._keys, self._prefix = keys, prefix

    def iterlists(self) -> Any:
        return ((name, versions) for name, versions in self._keys.iterlists() if name.startswith(self._prefix))


class _BucketUnder:
    def __init__(self, bucket: Any, prefix: str) -> None:
        self.keys = _KeysUnder(bucket.keys, prefix)


class _BackendUnder:
    """What moto's list_object_versions reads of its backend (get_bucket), seeing only the keys under `prefix`."""

    def __init__(self, backend: S3Backend, prefix: str) -> None:
        self._backend, self._prefix = backend, prefix

    def get_bucket(self, bucket_name: str) -> _BucketUnder:
        return _BucketUnder(self._backend.get_bucket(bucket_name), self._prefix)


def _list_object_versions_under_prefix(self: S3Backend, bucket_name: str, **options: Any) -> Any:
    prefix = options.get("prefix") or ""
    return _MOTO_LIST_OBJECT_VERSIONS(_BackendUnder(self, prefix), bucket_name, **options)  # type: ignore[arg-type]


def install() -> None:
    """Idempotent: moto's classes gain the operations once per process."""
    S3Backend.list_object_versions = _list_object_versions_under_prefix  # type: ignore[method-assign, assignment]
    SageMakerModelBackend.describe_feature_group = _describe_feature_group_or_not_found  # type: ignore[method-assign]
    SageMakerModelBackend.update_model_package = _update_keeping_metadata  # type: ignore[method-assign, assignment]
    SageMakerResponse.update_model_package = _update_naming_the_caller  # type: ignore[method-assign]
    SageMakerResponse.delete_model_package = _delete_model_package_response  # type: ignore[attr-defined]
    SageMakerResponse.create_processing_job = _create_processing_job_keeping_resources  # type: ignore[method-assign]
    SageMakerResponse.delete_model_package_group = _delete_model_package_group_response  # type: ignore[attr-defined]

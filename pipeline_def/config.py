"""`PipelineConfig`: the one typed source of truth for the training pipeline.

The same YAML text lives in `config/pipeline.yaml` and in the SSM parameter. Loading it either way
reports every invalid field at once, each with its dotted path and the reason.
"""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline_def.hyperparameters import Hyperparameters
from pipeline_def.names import MANIFEST_FILE

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "pipeline.yaml"


def _matches(regex: str, what: str) -> AfterValidator:
    """A check by regular expression whose error says what was expected."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


InstanceType = Annotated[
    str,
    _matches(
        r"ml\.[a-z][a-z0-9]*[0-9][a-z0-9]*(-[a-z0-9]+)?\.(nano|micro|small|medium|large|[0-9]*xlarge)",
        "a SageMaker instance type such as ml.m5.xlarge",
    ),
]
PipelineName = Annotated[
    str, _matches(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", "a pipeline name (letters, digits, hyphens)")
]
# SageMaker's PipelineDisplayName: letters, digits and inner hyphens, no spaces
PipelineDisplayName = Annotated[
    str,
    _matches(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", "a pipeline display name (letters, digits, inner hyphens)"),
    Field(max_length=256),  # the pattern lets hyphens stretch it; SageMaker's limit is 256
]
# SageMaker's descriptions are Java's `.*`: one line, no line terminator
SingleLine = Annotated[str, _matches(r"[^\n\r\u0085\u2028\u2029]*", "one line of text (no line breaks)")]
PackageGroupName = Annotated[str, _matches(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "a model package group name")]
FeatureGroupName = Annotated[str, _matches(r"[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}", "a feature group name")]
BucketName = Annotated[str, _matches(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name")]
S3Prefix = Annotated[
    str, _matches(r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*", "an S3 key prefix without leading or trailing '/'")
]
S3Uri = Annotated[str, _matches(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?", "an s3:// URI")]
RoleArn = Annotated[str, _matches(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+", "an IAM role ARN")]
EcrImageUri = Annotated[
    str,
    _matches(
        r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*"
        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?",
        "an ECR image URI (account.dkr.ecr.region.amazonaws.com/repository[:tag|@sha256:digest])",
    ),
]
# SageMaker pulls one image manifest for its x86_64 instances: a manifest list or an OCI index (what BuildKit
# pushes with provenance or SBOM attestations, or for many platforms) fails the job at pull time
RUNNABLE_MANIFESTS = frozenset(
    {"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}
)


def manifest_problem(image: str, media_type: str) -> str | None:
    """None when SageMaker can run an image pushed with this manifest media type, else why not."""
    if media_type in RUNNABLE_MANIFESTS:
        return None
    return (
        f"{image} was pushed as {media_type or 'an unknown manifest type'}, which SageMaker cannot run: it needs one "
        "linux/amd64 image manifest (Docker v2 or OCI), not a list or an index"
    )


Duration = Annotated[
    str,
    _matches(
        r"P(?=[0-9T])([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?)?",
        "an ISO 8601 duration such as P30D, PT12H or P1DT6H",
    ),
]
MimeType = Annotated[str, _matches(r"[-\w]+/[-\w+.]+", "a MIME type")]
SlackUserId = Annotated[str, _matches(r"[UW][A-Z0-9]{2,}", "a Slack user id such as U012AB3CD")]
SlackChannelId = Annotated[str, _matches(r"[CDG][A-Z0-9]{2,}", "a Slack channel id such as C012AB3CD")]
ClassName = Annotated[str, _matches(r"[A-Za-z0-9_-]{1,64}", "a class name (letters, digits, '_' and '-')")]
TagKey = Annotated[
    str, _matches(r"(?!aws:)[\w\s.:/=+@-]{1,128}", "a tag key (up to 128 characters, not starting with 'aws:')")
]
TagValue = Annotated[str, _matches(r"[\w\s.:/=+@-]{0,256}", "a tag value (up to 256 characters)")]
# what Register gives a new model: only a recorded decision (the API or Slack) approves or rejects it, so the config
# cannot say Approved either (it would skip the gate for every run)
ApprovalStatus = Literal["PendingManualApproval"]
DAY = 86_400


class ConfigError(ValueError):
    """An invalid pipeline configuration, with one `(path, reason)` per problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid pipeline config ({source}), {len(problems)} problem(s):\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# SageMaker's CustomerMetadataValue: 1-256 characters matching `[\p{L}\p{Z}\p{N}_.:\/=+\-@]*` (the manifest URI
# is ASCII: bucket names and the prefix allow no other letters); a pipeline execution id is 12 characters
MAX_METADATA_VALUE = 256
METADATA_VALUE = re.compile(r"[A-Za-z0-9 _.:/=+\-@]*")
EXECUTION_ID_LENGTH = 12
MANIFEST_IN_RUN = f"Preprocess/report/{MANIFEST_FILE}"


class PipelineSettings(_Strict):
    name: PipelineName
    display_name: PipelineDisplayName
    description: SingleLine = Field(max_length=3072)
    # MaxParallelExecutionSteps of the pipeline's ParallelismConfiguration
    max_parallel_steps: int = Field(ge=1, le=256)


class StorageSettings(_Strict):
    bucket: BucketName
    prefix: S3Prefix

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class FeatureGroupSettings(_Strict):
    name: FeatureGroupName
    # The offline store's data prefix, read by Preprocess. None (or empty): the group's own, DescribeFeatureGroup's
    # ResolvedOutputS3Uri, looked up whenever the pipeline is built (pipeline_def.deploy.plan)
    offline_store_uri: S3Uri | None = None

    @field_validator("offline_store_uri", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


class JobResources(_Strict):
    instance_type: InstanceType
    instance_count: int = Field(ge=1, le=100)
    volume_size_gb: int = Field(ge=1, le=16_384)
    max_runtime_seconds: int = Field(ge=60, le=5 * DAY)


class SplitRatios(_Strict):
    train: float = Field(gt=0, lt=1)
    validation: float = Field(gt=0, lt=1)
    test: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitRatios:
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"train + validation + test must sum to 1, got {total:g}")
        return self


class PreprocessSettings(JobResources):
    split: SplitRatios
    # boxes smaller than this on either side (pixels) are dropped and reported
    min_box_size: int = Field(ge=1)


class SpotSettings(_Strict):
    enabled: bool
    # MaxWaitTimeInSeconds: training time plus time spent waiting for spot capacity
    max_wait_seconds: int = Field(ge=60, le=28 * DAY)


class TrainingSettings(JobResources):
    spot: SpotSettings
    # the recipe: pipeline_def/hyperparameters.py declares every knob with its default; set here what differs
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    @model_validator(mode="after")
    def _spot_wait_covers_runtime(self) -> TrainingSettings:
        if self.spot.enabled and self.spot.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"spot.max_wait_seconds ({self.spot.max_wait_seconds}) must be at least "
                f"max_runtime_seconds ({self.max_runtime_seconds})"
            )
        return self


class EvaluationSettings(JobResources):
    # The score threshold of precision, recall, the predictions picture and serving is the model's own, chosen on
    # the validation split (the one that maximises F1 at IoU 0.5), never below this floor; 0.5 when the model has
    # none (no validation split). `score_threshold` overrides it for every model.
    score_threshold_floor: float = Field(default=0.1, ge=0, le=1)
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    # the test mAP@0.5 a model needs to be registered
    map_threshold: float = Field(ge=0, le=1)


class ModelRegistrySettings(_Strict):
    model_package_group: PackageGroupName
    approval_status: ApprovalStatus
    content_types: list[MimeType] = Field(min_length=1)
    response_types: list[MimeType] = Field(min_length=1)
    inference_instance_types: list[InstanceType] = Field(min_length=1)
    transform_instance_types: list[InstanceType] = Field(min_length=1)
    # When set, a model is registered only if its test mAP also beats the approved model's (the champion, scored
    # on the same test images) by this margin; a run without a readable champion needs only map_threshold.
    # Off (null) by default; negative allows a model that is at most that much worse.
    min_improvement: float | None = Field(default=None, ge=-1, le=1)
    # Separation of duties through the API: the identity that started a run may not approve or deploy the model it
    # produced (a 409 naming the rule and the starter). Slack approvals are governed by slack.approvers.
    four_eyes: bool = True


class StepCache(_Strict):
    preprocess: bool
    train: bool
    evaluate: bool
    expire_after: Duration


class RetryPolicy(_Strict):
    max_attempts: int = Field(ge=1, le=20)
    interval_seconds: int = Field(ge=1, le=43_200)
    backoff_rate: float = Field(ge=1, le=10)


class RetrySettings(_Strict):
    # Step.SERVICE_FAULT and Step.THROTTLING, on every step that calls a service
    service: RetryPolicy
    # SageMaker.CAPACITY_ERROR and SageMaker.JOB_INTERNAL_ERROR, on the job steps (RESOURCE_LIMIT fails at once)
    capacity: RetryPolicy


class SlackSettings(_Strict):
    channel: SlackChannelId
    # Slack user ids allowed to approve or reject; empty refuses everyone
    approvers: list[SlackUserId]


class DeploymentSettings(_Strict):
    """The stack's real-time endpoint, which POST /models/{version}/deploy points at an Approved model."""

    instance_type: InstanceType
    instance_count: int = Field(ge=1, le=10)
    # true: approving a model (API or Slack) deploys it, once per approval
    on_approval: bool = False


class PricingSettings(_Strict):
    """What an instance-hour costs, for the estimated cost of a run (GET /runs/{id}, the approval request): on-demand
    list prices of one region on one date, from AWS's SageMaker pricing page. They are not the bill: prices change
    and differ by region, and spot training is billed at a spot price that AWS does not publish as fixed."""

    region: Annotated[str, _matches(r"[a-z]{2}(-[a-z]+)+-[0-9]", "an AWS region such as us-east-1")]
    # the day the prices were read
    as_of: date
    currency: Literal["USD"] = "USD"
    # USD per instance-hour; a type missing here gets no estimate (never a guess)
    per_hour: dict[InstanceType, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(max_length=500)


# instance families with GPUs or other accelerators, which the CPU image cannot use
ACCELERATED = re.compile(r"ml\.(g|p|inf|trn|dl)[0-9]")
# what neither image runs on: AWS's own accelerators (Neuron), and GPUs newer than mxnet-cu112's compute
# capabilities 5.0-8.6 (it has no PTX for them): H100 (p5), L4 (g6), L40S (g6e), H200 and later
NOT_FOR_MXNET_CUDA = re.compile(r"ml\.(inf|trn|dl|p5|p6|g6)")


class PipelineConfig(_Strict):
    pipeline: PipelineSettings
    role_arn: RoleArn
    image_uri: EcrImageUri
    # how the image was built: cpu (the Dockerfile's default) or gpu (MXNET=mxnet-cu112 on a CUDA base)
    image_variant: Literal["cpu", "gpu"] = "cpu"
    storage: StorageSettings
    feature_group: FeatureGroupSettings
    classes: list[ClassName] = Field(min_length=1)
    preprocess: PreprocessSettings
    training: TrainingSettings
    evaluation: EvaluationSettings
    model_registry: ModelRegistrySettings
    deployment: DeploymentSettings
    cache: StepCache
    retry: RetrySettings
    slack: SlackSettings
    pricing: PricingSettings
    tags: dict[TagKey, TagValue] = Field(max_length=40)

    @model_validator(mode="after")
    def _processing_on_one_instance(self) -> PipelineConfig:
        # Preprocessing dedups and splits the whole dataset, evaluation scores the whole test split: on more
        # instances each would do the whole job alone and overwrite the others' outputs. Training is the one job
        # that shares its work over instances (MXNet's parameter server, every host a shard).
        many = [
            f"{name}.instance_count is {job.instance_count}"
            for name, job in (("preprocess", self.preprocess), ("evaluation", self.evaluation))
            if job.instance_count > 1
        ]
        if many:
            raise ValueError(
                f"{'; '.join(many)}: processing steps run on one instance (each instance would process the whole "
                "dataset alone and overwrite the others' outputs); use 1. training.instance_count may be more"
            )
        return self

    @model_validator(mode="after")
    def _manifest_uri_fits_the_model_metadata(self) -> PipelineConfig:
        # the run's manifest URI goes into the model package's CustomerMetadataProperties (DataManifest), whose
        # values SageMaker takes at most 256 characters long, of letters, digits, spaces and _.:/=+-@ only
        uri = f"{self.storage.root}/{self.pipeline.name}/{'x' * EXECUTION_ID_LENGTH}/{MANIFEST_IN_RUN}"
        if len(uri) > MAX_METADATA_VALUE or not METADATA_VALUE.fullmatch(uri):
            raise ValueError(
                f"storage.prefix and pipeline.name: the run's manifest URI would be {len(uri)} characters long; the"
                f" model package's metadata (DataManifest) takes at most {MAX_METADATA_VALUE} of letters, digits and"
                " _.:/=+-@: use a shorter prefix or name, without !*'()"
            )
        return self

    @model_validator(mode="after")
    def _global_batch_splits_over_the_hosts(self) -> PipelineConfig:
        hosts, batch = self.training.instance_count, self.training.hyperparameters.batch_size
        if batch % hosts:
            raise ValueError(
                f"training.hyperparameters.batch_size {batch} does not split over training.instance_count {hosts} "
                f"(the batch is the global one, an equal part on each host): use a multiple of {hosts}"
            )
        return self

    @model_validator(mode="after")
    def _deployment_on_a_supported_instance(self) -> PipelineConfig:
        supported = self.model_registry.inference_instance_types
        if self.deployment.instance_type not in supported:
            raise ValueError(
                f"deployment.instance_type {self.deployment.instance_type} is not among the model's "
                f"model_registry.inference_instance_types ({', '.join(supported)})"
            )
        return self

    @model_validator(mode="after")
    def _instances_fit_the_image(self) -> PipelineConfig:
        offered = [
            ("preprocess.instance_type", [self.preprocess.instance_type]),
            ("training.instance_type", [self.training.instance_type]),
            ("evaluation.instance_type", [self.evaluation.instance_type]),
            ("model_registry.inference_instance_types", self.model_registry.inference_instance_types),
            ("model_registry.transform_instance_types", self.model_registry.transform_instance_types),
            ("deployment.instance_type", [self.deployment.instance_type]),
        ]
        if self.image_variant == "gpu":
            unfit = [f"{path}: {kind}" for path, kinds in offered for kind in kinds if NOT_FOR_MXNET_CUDA.match(kind)]
            if unfit:
                raise ValueError(
                    f"image_variant is gpu (mxnet-cu112: CUDA 11.2, NVIDIA compute capabilities 5.0-8.6), which cannot "
                    f"use these instances' accelerators: {'; '.join(unfit)} (g4dn, g5, p3 and p4d can; so can CPU "
                    "instances, on the image's CPU build of MXNet)"
                )
            return self
        wrong = [f"{path}: {kind}" for path, kinds in offered for kind in kinds if ACCELERATED.match(kind)]
        if wrong:
            raise ValueError(
                f"image_variant is cpu, so no GPU or accelerator instance can run it: {'; '.join(wrong)}"
                " (build the GPU image and set image_variant: gpu, or choose CPU instances)"
            )
        return self

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, classes: list[str]) -> list[str]:
        if len(set(classes)) != len(classes):
            raise ValueError("class names must be unique")
        return classes

    @classmethod
    def from_yaml(cls, text: str, source: str = "<text>") -> PipelineConfig:
        """Parse and validate YAML text (a file's or the SSM parameter's)."""
        data = _load_yaml(text, source)
        return cls.from_dict(data, source)

    @classmethod
    def from_file(cls, path: Path | str = DEFAULT_CONFIG_PATH) -> PipelineConfig:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(path), [("<file>", exc.strerror or str(exc))]) from exc
        return cls.from_yaml(text, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> PipelineConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(source, _problems(exc)) from None

    def api_tags(self) -> list[dict[str, str]]:
        """The tags in the form SageMaker's APIs take, in a stable order."""
        return [{"Key": key, "Value": value} for key, value in sorted(self.tags.items())]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "<root>"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown field"
        problems.append((path, reason))
    return problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which plain YAML silently overwrites."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, source: str) -> Any:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [(where, str(reason))]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, [("<root>", "the config must be a YAML mapping")])
    return data

"""`build_definition(config)`: the SageMaker pipeline definition JSON, pure Python and deterministic.

Preprocess (Processing) -> Train (Training) -> Evaluate (Processing, property file evaluation.json; the new
model and the champion, the group's newest approved model as the job reads it from the registry, on the same test
split) -> CheckMap (Condition:
test mAP >= MapThreshold and >= the config's evaluation.map_threshold, and >= the champion's +
model_registry.min_improvement when the config sets one) -> Register (RegisterModel) else Fail.

The gate is not a run's to change: the data a model is judged on (the stack's offline store), the status it is
registered with (the config's, PendingManualApproval), the champion it is compared with (the group's, read by the
job) and the config's mAP floor are constants of the definition,
so neither the API, the schedule nor a direct StartPipelineExecution can set them; a run's MapThreshold can only
add to the floor. A run's DataAsOf chooses only how far back in that same store it reads (the rows written, and the
image versions current, at or before it): an earlier snapshot of the stack's own data, which the model and the
champion are both judged on (the test split of that data), which every model package names (DataAsOf, and the
manifest's URI and sha256 in its metadata) and which a person still approves; it cannot point at other data, skip
the comparison or lower the bar.

The same config always gives the same bytes: no timestamps, random ids or upload paths. Every S3 output
path contains the execution id, so concurrent runs never overwrite each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, get_args, get_origin

from pipeline_def import expressions as ex
from pipeline_def import hyperparameters
from pipeline_def.config import ConfigError, JobResources, PipelineConfig, RetryPolicy
from pipeline_def.expressions import Json
from pipeline_def.job_text import job_text
from pipeline_def.metrics import metric_definitions
from pipeline_def.names import (
    CURVES_FILE,
    DATA_AS_OF,
    EVALUATION_FILE,
    MANIFEST_FILE,
    MAP_THRESHOLD,
    PREDICTIONS_FILE,
    ingest_log_uri,
)

__all__ = ["CURVES_FILE", "EVALUATION_FILE", "PREDICTIONS_FILE", "build_definition"]

DEFINITION_VERSION = "2020-12-01"
PARAMETER_TYPES: dict[type, Literal["String", "Integer", "Float", "Boolean"]] = {
    str: "String",
    int: "Integer",
    float: "Float",
    bool: "Boolean",
}

PREPROCESS, TRAIN, EVALUATE, CHECK_MAP, REGISTER, FAIL = (
    "Preprocess",
    "Train",
    "Evaluate",
    "CheckMap",
    "Register",
    "Fail",
)
EVALUATION_REPORT = "EvaluationReport"  # the property file over evaluation.json
MAP_PATH = "metrics.map.value"
REQUIRED_MAP_PATH = "comparison.required_map"  # the champion's mAP + min_improvement (0 without a champion)
COMPARISON_PATH = "comparison.summary"  # one line with both figures, for the Fail message
SCORE_THRESHOLD_PATH = "score_threshold"  # the threshold evaluation counted with: serving's default
# the run's dataset as evaluation.json names it (detector.evaluate): the model package's metadata carries them
DATASET_METADATA = {
    "DataAsOf": "dataset.as_of",
    "DataManifest": "dataset.manifest_uri",
    "DataManifestSha256": "dataset.manifest_sha256",
}

PROCESSING_ROOT = "/opt/ml/processing"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
PREPROCESS_OUTPUTS = ("train", "validation", "test", "report")
TRAINING_CHANNELS = ("train", "validation")
RECORDIO = "application/x-recordio"

SERVICE_ERRORS = ["Step.SERVICE_FAULT", "Step.THROTTLING"]
# SageMaker.RESOURCE_LIMIT is not retried: a job over an account quota (ResourceLimitExceeded) fails at once, naming
# the quota, instead of after the capacity policy's hour of waits; only a quota increase makes room for it
CAPACITY_ERRORS = ["SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR"]


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter: what a caller may override for one run."""

    name: str
    type: Literal["String", "Integer", "Float", "Boolean"]
    default: str | int | float | bool
    enum: tuple[str, ...] = ()

    def to_json(self) -> Json:
        declared: Json = {"Name": self.name, "Type": self.type, "DefaultValue": self.default}
        if self.enum:
            declared["EnumValues"] = list(self.enum)
        return declared

    @property
    def ref(self) -> Json:
        return ex.parameter(self.name)

    @property
    def as_string(self) -> Json:
        return self.ref if self.type == "String" else ex.as_string(self.ref)


def parameters(config: PipelineConfig) -> dict[str, Parameter]:
    """The run-time knobs, with the config's values as defaults. None of them can weaken the gate: see the module's
    docstring for what is constant."""
    hp = config.training.hyperparameters
    declared = [
        Parameter("ProcessingInstanceType", "String", config.preprocess.instance_type),
        Parameter("TrainingInstanceType", "String", config.training.instance_type),
        Parameter("TrainingInstanceCount", "Integer", config.training.instance_count),
        Parameter("EvaluationInstanceType", "String", config.evaluation.instance_type),
        *(_run_parameter(name, run, getattr(hp, name)) for name, run in hyperparameters.run_parameters().items()),
        Parameter(MAP_THRESHOLD, "Float", config.evaluation.map_threshold),
        # not a knob of the gate: see the module's docstring
        Parameter(DATA_AS_OF, "String", ""),
    ]
    return {p.name: p for p in declared}


def _run_parameter(field: str, name: str, default: str | int | float | bool) -> Parameter:
    """A hyperparameter a run may set: its type (and choices) from its declaration in pipeline_def.hyperparameters."""
    declared = hyperparameters.Hyperparameters.model_fields[field].annotation
    choices = tuple(get_args(declared)) if get_origin(declared) is Literal else ()
    kind = PARAMETER_TYPES[type(default)] if not choices else "String"
    return Parameter(name, kind, default, choices)


def build_definition(config: PipelineConfig) -> str:
    """The pipeline definition as JSON text: the artefact deployed unchanged to SageMaker."""
    return json.dumps(definition_document(config), indent=2, ensure_ascii=True)


def definition_document(config: PipelineConfig) -> Json:
    params = parameters(config)
    builder = _Builder(config, params)
    return {
        "Version": DEFINITION_VERSION,
        "Metadata": {},
        "Parameters": [p.to_json() for p in params.values()],
        "Steps": [builder.preprocess(), builder.train(), builder.evaluate(), builder.check_map()],
    }


class _Builder:
    def __init__(self, config: PipelineConfig, params: dict[str, Parameter]) -> None:
        self.config = config
        self.p = params
        tags = config.api_tags()
        self.tagged: Json = {"Tags": tags} if tags else {}  # no Tags key without tags, as the SDK writes it

    # --- shared pieces ---------------------------------------------------------------------------

    def output_uri(self, step: str, name: str) -> Json:
        """s3://bucket/prefix/<pipeline>/<execution id>/<step>/<name>: one folder per run."""
        root = f"{self.config.storage.root}/{self.config.pipeline.name}"
        return ex.join("/", root, ex.EXECUTION_ID, step, name)

    @staticmethod
    def _retry(exceptions: list[str], policy: RetryPolicy) -> Json:
        return {
            "ExceptionType": exceptions,
            "IntervalSeconds": policy.interval_seconds,
            "BackoffRate": policy.backoff_rate,
            "MaxAttempts": policy.max_attempts,
        }

    def job_retries(self) -> list[Json]:
        retry = self.config.retry
        return [self._retry(SERVICE_ERRORS, retry.service), self._retry(CAPACITY_ERRORS, retry.capacity)]

    def cache(self, enabled: bool) -> Json:
        return {"Enabled": enabled, "ExpireAfter": self.config.cache.expire_after}

    def processing_step(
        self,
        name: str,
        *,
        description: str,
        resources: JobResources,
        instance_type: Parameter,
        module: str,
        arguments: list[str],
        inputs: list[tuple[str, Json]],
        outputs: tuple[str, ...],
        cached: bool,
    ) -> Json:
        return {
            "Name": name,
            "Type": "Processing",
            "Description": description,
            "Arguments": {
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceType": instance_type.ref,
                        "InstanceCount": resources.instance_count,
                        "VolumeSizeInGB": resources.volume_size_gb,
                    }
                },
                "AppSpecification": {
                    "ImageUri": self.config.image_uri,
                    "ContainerEntrypoint": ["python3", "-m", module],
                    "ContainerArguments": arguments,
                },
                "RoleArn": self.config.role_arn,
                "ProcessingInputs": [
                    {
                        "InputName": input_name,
                        "S3Input": {
                            "S3Uri": uri,
                            "LocalPath": f"{PROCESSING_ROOT}/input/{input_name}",
                            "S3DataType": "S3Prefix",
                            "S3InputMode": "File",
                            "S3DataDistributionType": "FullyReplicated",
                            "S3CompressionType": "None",
                        },
                    }
                    for input_name, uri in inputs
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": output,
                            "S3Output": {
                                "S3Uri": self.output_uri(name, output),
                                "LocalPath": f"{PROCESSING_ROOT}/output/{output}",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                        for output in outputs
                    ]
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": resources.max_runtime_seconds},
                **self.tagged,
            },
            "CacheConfig": self.cache(cached),
            "RetryPolicies": self.job_retries(),
        }

    # --- steps -----------------------------------------------------------------------------------

    def preprocess(self) -> Json:
        cfg = self.config
        split = cfg.preprocess.split
        return self.processing_step(
            PREPROCESS,
            description="Latest approved feature-store records to train/validation/test RecordIO files",
            resources=cfg.preprocess,
            instance_type=self.p["ProcessingInstanceType"],
            module="detector.preprocess",
            arguments=_cli_args(
                feature_group=cfg.feature_group.name,
                classes=",".join(cfg.classes),
                train_ratio=job_text(split.train),
                validation_ratio=job_text(split.validation),
                test_ratio=job_text(split.test),
                min_box_size=str(cfg.preprocess.min_box_size),
                ingest_log=ingest_log_uri(cfg.storage.bucket, cfg.feature_group.name),
                data_as_of=self.p[DATA_AS_OF].ref,
            ),
            inputs=[("offline-store", _offline_store(cfg))],
            outputs=PREPROCESS_OUTPUTS,
            cached=cfg.cache.preprocess,
        )

    def train(self) -> Json:
        cfg = self.config
        training = cfg.training
        hp = training.hyperparameters
        p = self.p
        run = hyperparameters.run_parameters()
        job_values: dict[str, Json] = {
            name: p[run[name]].as_string if name in run else job_text(value) for name, value in hp.model_dump().items()
        }
        job_values["classes"] = job_text(cfg.classes)
        stopping: Json = {"MaxRuntimeInSeconds": training.max_runtime_seconds}
        if training.spot.enabled:
            stopping["MaxWaitTimeInSeconds"] = training.spot.max_wait_seconds
        arguments: Json = {
            "AlgorithmSpecification": {
                "TrainingImage": cfg.image_uri,
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions(),
                "EnableSageMakerMetricsTimeSeries": True,
            },
            "HyperParameters": job_values,
            "InputDataConfig": [
                {
                    "ChannelName": channel,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": ex.processing_output_uri(PREPROCESS, channel),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": RECORDIO,
                    "InputMode": "File",
                }
                for channel in TRAINING_CHANNELS
            ],
            "OutputDataConfig": {"S3OutputPath": self.output_uri(TRAIN, "model"), "CompressionType": "GZIP"},
            "ResourceConfig": {
                "InstanceType": p["TrainingInstanceType"].ref,
                "InstanceCount": p["TrainingInstanceCount"].ref,
                "VolumeSizeInGB": training.volume_size_gb,
            },
            "RoleArn": cfg.role_arn,
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": training.spot.enabled,
            # a retried or spot-interrupted job of the same run resumes from here
            "CheckpointConfig": {"S3Uri": self.output_uri(TRAIN, "checkpoints"), "LocalPath": CHECKPOINT_DIR},
            **self.tagged,
        }
        return {
            "Name": TRAIN,
            "Type": "Training",
            "Description": "YOLOv3 (GluonCV) on the train split, best epoch by validation mAP",
            "Arguments": arguments,
            "CacheConfig": self.cache(cfg.cache.train),
            "RetryPolicies": self.job_retries(),
        }

    def evaluate(self) -> Json:
        cfg = self.config
        step = self.processing_step(
            EVALUATE,
            description="Test-split mAP@0.5 (VOC07), per-class AP, precision and recall, beside the champion's",
            resources=cfg.evaluation,
            instance_type=self.p["EvaluationInstanceType"],
            module="detector.evaluate",
            arguments=self.evaluation_args(),
            inputs=[
                ("model", ex.step_property(TRAIN, "ModelArtifacts.S3ModelArtifacts")),
                ("test", ex.processing_output_uri(PREPROCESS, "test")),
                # the run's dataset report and manifest (Preprocess's report output)
                ("dataset", ex.processing_output_uri(PREPROCESS, "report")),
            ],
            outputs=("evaluation",),
            cached=cfg.cache.evaluate,
        )
        step["PropertyFiles"] = [
            {"PropertyFileName": EVALUATION_REPORT, "OutputName": "evaluation", "FilePath": EVALUATION_FILE}
        ]
        return step

    def evaluation_args(self) -> list[Json]:
        """The threshold floor, the config's override, the champion's group and the margin over it (when set).
        The job reads the champion from the registry itself: no run parameter can name another one, or none."""
        evaluation, registry = self.config.evaluation, self.config.model_registry
        margin = registry.min_improvement
        args: list[Json] = _cli_args(score_threshold_floor=job_text(evaluation.score_threshold_floor))
        if evaluation.score_threshold is not None:
            args += _cli_args(score_threshold=job_text(evaluation.score_threshold))
        args += _cli_args(model_package_group=registry.model_package_group)
        if margin is not None:
            args += _cli_args(min_improvement=job_text(margin))
        args += _cli_args(manifest_uri=manifest_uri())
        return args

    def evaluation_value(self, path: str) -> Json:
        """A value of evaluation.json, read through the Evaluate step's property file."""
        return ex.json_get(EVALUATE, EVALUATION_REPORT, path)

    def test_map(self) -> Json:
        return self.evaluation_value(MAP_PATH)

    def check_map(self) -> Json:
        conditions = [
            {"Type": "GreaterThanOrEqualTo", "LeftValue": self.test_map(), "RightValue": self.p[MAP_THRESHOLD].ref},
            # the config's floor as a constant: a run's MapThreshold can raise the bar, never lower it
            {
                "Type": "GreaterThanOrEqualTo",
                "LeftValue": self.test_map(),
                "RightValue": self.config.evaluation.map_threshold,
            },
        ]
        description = "Register the model only if its test mAP reaches MapThreshold and evaluation.map_threshold"
        if self.config.model_registry.min_improvement is not None:
            conditions.append(
                {
                    "Type": "GreaterThanOrEqualTo",
                    "LeftValue": self.test_map(),
                    "RightValue": self.evaluation_value(REQUIRED_MAP_PATH),
                }
            )
            description += " and beats the champion's by model_registry.min_improvement"
        return {
            "Name": CHECK_MAP,
            "Type": "Condition",
            "Description": description,
            "Arguments": {
                "Conditions": conditions,
                "IfSteps": [self.register()],
                "ElseSteps": [self.fail()],
            },
        }

    def register(self) -> Json:
        cfg = self.config
        registry = cfg.model_registry
        evaluation_uri = ex.join("/", ex.processing_output_uri(EVALUATE, "evaluation"), EVALUATION_FILE)
        arguments: Json = {
            "ModelPackageGroupName": registry.model_package_group,
            "ModelPackageDescription": f"YOLOv3 scratch detector trained by the {cfg.pipeline.name} pipeline",
            # a constant: a model reaches Approved only through a recorded decision (control_plane.registry)
            "ModelApprovalStatus": cfg.model_registry.approval_status,
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": cfg.image_uri,
                        "ModelDataUrl": ex.step_property(TRAIN, "ModelArtifacts.S3ModelArtifacts"),
                        "Framework": "MXNET",
                        "FrameworkVersion": "1.9.1",
                        # serve's default score threshold: the one the evaluation counted with
                        "Environment": {"SCORE_THRESHOLD": ex.join("", self.evaluation_value(SCORE_THRESHOLD_PATH))},
                    }
                ],
                "SupportedContentTypes": list(registry.content_types),
                "SupportedResponseMIMETypes": list(registry.response_types),
                "SupportedRealtimeInferenceInstanceTypes": list(registry.inference_instance_types),
                "SupportedTransformInstanceTypes": list(registry.transform_instance_types),
            },
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}
            },
            "MetadataProperties": {"GeneratedBy": ex.EXECUTION_ARN},
            "CustomerMetadataProperties": {
                "PipelineExecutionArn": ex.EXECUTION_ARN,
                "TestMap": ex.as_string(self.test_map()),
                "MapThreshold": self.p[MAP_THRESHOLD].as_string,
                "MapFloor": job_text(cfg.evaluation.map_threshold),
                "Backbone": self.p["Backbone"].as_string,
                "NumEpochs": self.p["NumEpochs"].as_string,
                "TrainingJobName": ex.step_property(TRAIN, "TrainingJobName"),
                # the data it learned from: the as-of time, and the manifest of every image with its version
                **{name: self.evaluation_value(path) for name, path in DATASET_METADATA.items()},
            },
            "Domain": "COMPUTER_VISION",
            "Task": "OBJECT_DETECTION",
            **self.tagged,
        }
        return {
            "Name": REGISTER,
            "Type": "RegisterModel",
            "Description": "Version the model in the model package group, awaiting approval",
            "Arguments": arguments,
            "RetryPolicies": [self._retry(SERVICE_ERRORS, self.config.retry.service)],
        }

    def fail(self) -> Json:
        floor = job_text(self.config.evaluation.map_threshold)
        parts = ["Test mAP ", self.test_map(), " is below the threshold ", self.p[MAP_THRESHOLD].ref]
        parts += [f" or the config's floor {floor}"]
        if self.config.model_registry.min_improvement is not None:
            parts += [" or does not beat the champion (", self.evaluation_value(COMPARISON_PATH), ")"]
        message = ex.join("", *parts, ": the model was not registered")
        return {
            "Name": FAIL,
            "Type": "Fail",
            "Description": "The model's test mAP is below MapThreshold or evaluation.map_threshold",
            "Arguments": {"ErrorMessage": message},
        }


def manifest_uri() -> Json:
    """The run's manifest: `report/manifest.jsonl` of Preprocess's outputs."""
    return ex.join("/", ex.processing_output_uri(PREPROCESS, "report"), MANIFEST_FILE)


def _cli_args(**options: Json) -> list[Json]:
    """ContainerArguments: `--option value` pairs, in the given order."""
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", value)]


def _offline_store(config: PipelineConfig) -> str:
    uri = config.feature_group.offline_store_uri
    if uri is None:
        reason = "not given and not looked up: pipeline_def.deploy.plan resolves it with DescribeFeatureGroup"
        raise ConfigError("config", [("feature_group.offline_store_uri", reason)])
    return uri

"""The same pipeline built with the SageMaker Python SDK (v3): the cross-check and the benchmark's baseline.

Dev only: the product never imports the SDK. Offline, the SDK needs a region, SAGEMAKER_VALIDATE_ROLE=false,
an explicit role ARN and an explicit default bucket on its session (otherwise it asks S3 and STS).
"""

from __future__ import annotations

import os
from typing import Any

from pipeline_def import definition as ours
from pipeline_def.config import PipelineConfig
from pipeline_def.hyperparameters import run_parameters
from pipeline_def.job_text import job_text
from pipeline_def.metrics import metric_definitions
from pipeline_def.names import DATA_AS_OF, MANIFEST_FILE, ingest_log_uri

REGION = "us-east-1"


def prepare_environment() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    # Without credentials botocore asks the instance metadata service (a link-local address): give it
    # throwaway ones and switch that lookup off, so building a definition never leaves the process.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.setdefault(key, "offline")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def without_network() -> None:
    """Refuse every socket but Unix ones in this process: the SDK's telemetry calls then fail at once
    (it ignores their errors), as they do under the unit tests' socket guard."""
    import pytest_socket

    pytest_socket.disable_socket(allow_unix_socket=True)
    # no SDK defaults file: each one read costs seconds and makes the result depend on the machine
    os.environ["SAGEMAKER_ADMIN_CONFIG_OVERRIDE"] = os.devnull
    os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = os.devnull


def sdk_definition(config: PipelineConfig) -> str:
    """`Pipeline.definition()` of the SDK-built equivalent of `pipeline_def.build_definition(config)`."""
    prepare_environment()
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.pipeline import Pipeline

    sdk = _Sdk(config)
    preprocess = sdk.preprocess()
    train = sdk.train(preprocess)
    report = PropertyFile(name=ours.EVALUATION_REPORT, output_name="evaluation", path=ours.EVALUATION_FILE)
    evaluate = sdk.evaluate(preprocess, train, report)
    check = sdk.check_map(report, register=sdk.register(train, evaluate, report))
    pipeline = Pipeline(
        name=config.pipeline.name,
        parameters=list(sdk.params.values()),
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=sdk.session,
        pipeline_experiment_config=None,
    )
    definition: str = pipeline.definition()
    return definition


class _Sdk:
    """The SDK's pieces of the pipeline, one method per step (each imports what it uses: the SDK loads slowly)."""

    def __init__(self, config: PipelineConfig) -> None:
        import boto3
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        self.config = config
        self.session = PipelineSession(boto_session=boto3.Session(region_name=REGION))
        self.session._default_bucket = config.storage.bucket  # an explicit bucket: the SDK does not look for one
        kinds = {"String": ParameterString, "Integer": ParameterInteger, "Float": ParameterFloat}
        self.params: dict[str, Any] = {}
        for name, p in ours.parameters(config).items():
            extra = {"enum_values": list(p.enum)} if p.enum else {}
            self.params[name] = kinds[p.type](name=name, default_value=p.default, **extra)
        self.service, self.capacity = self._retries()
        self.tags = config.api_tags()

    def _retries(self) -> tuple[Any, Any]:
        from sagemaker.mlops.workflow.retry import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        retry = self.config.retry
        service = StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            interval_seconds=retry.service.interval_seconds,
            backoff_rate=retry.service.backoff_rate,
            max_attempts=retry.service.max_attempts,
        )
        capacity = SageMakerJobStepRetryPolicy(
            # not RESOURCE_LIMIT: a job over an account quota fails at once (pipeline_def.definition.CAPACITY_ERRORS)
            exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
            failure_reason_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
            interval_seconds=retry.capacity.interval_seconds,
            backoff_rate=retry.capacity.backoff_rate,
            max_attempts=retry.capacity.max_attempts,
        )
        return service, capacity

    def out(self, step: str, name: str) -> Any:
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        root = f"{self.config.storage.root}/{self.config.pipeline.name}"
        return Join(on="/", values=[root, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])

    def cache(self, enabled: bool) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig

        return CacheConfig(enable_caching=enabled, expire_after=self.config.cache.expire_after)

    def processing(
        self,
        name: str,
        settings: Any,
        instance_type: str,
        *,
        module: str,
        arguments: list[str],
        inputs: Any,
        outputs: Any,
    ) -> Any:
        from sagemaker.core.processing import Processor
        from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output

        processor = Processor(
            role=self.config.role_arn,
            image_uri=self.config.image_uri,
            instance_count=settings.instance_count,
            instance_type=self.params[instance_type],
            entrypoint=["python3", "-m", module],
            volume_size_in_gb=settings.volume_size_gb,
            max_runtime_in_seconds=settings.max_runtime_seconds,
            sagemaker_session=self.session,
            tags=self.tags,
        )
        return processor.run(
            inputs=[
                ProcessingInput(
                    input_name=input_name,
                    s3_input=ProcessingS3Input(
                        s3_uri=uri,
                        local_path=f"{ours.PROCESSING_ROOT}/input/{input_name}",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                    ),
                )
                for input_name, uri in inputs
            ],
            outputs=[
                ProcessingOutput(
                    output_name=output,
                    s3_output=ProcessingS3Output(
                        s3_uri=self.out(name, output),
                        local_path=f"{ours.PROCESSING_ROOT}/output/{output}",
                        s3_upload_mode="EndOfJob",
                    ),
                )
                for output in outputs
            ],
            arguments=arguments,
        )

    def preprocess(self) -> Any:
        from sagemaker.mlops.workflow.steps import ProcessingStep

        config = self.config
        split = config.preprocess.split
        return ProcessingStep(
            name=ours.PREPROCESS,
            step_args=self.processing(
                ours.PREPROCESS,
                config.preprocess,
                "ProcessingInstanceType",
                module="detector.preprocess",
                arguments=[
                    "--feature-group",
                    config.feature_group.name,
                    "--classes",
                    ",".join(config.classes),
                    "--train-ratio",
                    repr(split.train),
                    "--validation-ratio",
                    repr(split.validation),
                    "--test-ratio",
                    repr(split.test),
                    "--min-box-size",
                    str(config.preprocess.min_box_size),
                    "--ingest-log",
                    ingest_log_uri(config.storage.bucket, config.feature_group.name),
                    "--data-as-of",
                    self.params[DATA_AS_OF],
                ],
                inputs=[("offline-store", config.feature_group.offline_store_uri)],
                outputs=ours.PREPROCESS_OUTPUTS,
            ),
            cache_config=self.cache(config.cache.preprocess),
            retry_policies=[self.service, self.capacity],
        )

    def trainer(self) -> Any:
        from sagemaker.core.shapes import CheckpointConfig, MetricDefinition, OutputDataConfig, Tag
        from sagemaker.train.configs import Compute, StoppingCondition
        from sagemaker.train.model_trainer import ModelTrainer

        config, params = self.config, self.params
        training = config.training
        run = run_parameters()
        return ModelTrainer(
            sagemaker_session=self.session,
            role=config.role_arn,
            training_image=config.image_uri,
            compute=Compute(
                instance_type=params["TrainingInstanceType"],
                instance_count=params["TrainingInstanceCount"],
                volume_size_in_gb=training.volume_size_gb,
                enable_managed_spot_training=training.spot.enabled,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=training.max_runtime_seconds,
                max_wait_time_in_seconds=training.spot.max_wait_seconds if training.spot.enabled else None,
            ),
            output_data_config=OutputDataConfig(s3_output_path=self.out(ours.TRAIN, "model"), compression_type="GZIP"),
            checkpoint_config=CheckpointConfig(
                s3_uri=self.out(ours.TRAIN, "checkpoints"), local_path=ours.CHECKPOINT_DIR
            ),
            # every hyperparameter, from the one declaration: a run's knob as its parameter, the rest as the config
            # has it
            hyperparameters={
                name: params[run[name]] if name in run else job_text(value)
                for name, value in training.hyperparameters.model_dump().items()
            }
            | {"classes": job_text(config.classes)},
            tags=[Tag(key=t["Key"], value=t["Value"]) for t in self.tags],
        ).with_metric_definitions([MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in metric_definitions()])

    def train(self, preprocess: Any) -> Any:
        from sagemaker.mlops.workflow.steps import TrainingStep
        from sagemaker.train.configs import InputData

        return TrainingStep(
            name=ours.TRAIN,
            step_args=self.trainer().train(
                input_data_config=[
                    InputData(
                        channel_name=channel,
                        data_source=preprocess.properties.ProcessingOutputConfig.Outputs[channel].S3Output.S3Uri,
                        content_type=ours.RECORDIO,
                    )
                    for channel in ours.TRAINING_CHANNELS
                ]
            ),
            cache_config=self.cache(self.config.cache.train),
            retry_policies=[self.service, self.capacity],
        )

    def evaluate(self, preprocess: Any, train: Any, report: Any) -> Any:
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow.steps import ProcessingStep

        config = self.config
        report_output = preprocess.properties.ProcessingOutputConfig.Outputs["report"].S3Output.S3Uri
        return ProcessingStep(
            name=ours.EVALUATE,
            step_args=self.processing(
                ours.EVALUATE,
                config.evaluation,
                "EvaluationInstanceType",
                module="detector.evaluate",
                arguments=["--score-threshold-floor", repr(config.evaluation.score_threshold_floor)]
                + (
                    []
                    if config.evaluation.score_threshold is None
                    else ["--score-threshold", repr(config.evaluation.score_threshold)]
                )
                + ["--model-package-group", config.model_registry.model_package_group]
                + (
                    []
                    if config.model_registry.min_improvement is None
                    else ["--min-improvement", repr(config.model_registry.min_improvement)]
                )
                + ["--manifest-uri", Join(on="/", values=[report_output, MANIFEST_FILE])],
                inputs=[
                    ("model", train.properties.ModelArtifacts.S3ModelArtifacts),
                    ("test", preprocess.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri),
                    ("dataset", report_output),
                ],
                outputs=("evaluation",),
            ),
            property_files=[report],
            cache_config=self.cache(config.cache.evaluate),
            retry_policies=[self.service, self.capacity],
        )

    def register(self, train: Any, evaluate: Any, report: Any) -> Any:
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.workflow.functions import Join, JsonGet
        from sagemaker.mlops.workflow.model_step import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        config = self.config
        registry = config.model_registry
        test_map = JsonGet(step_name=ours.EVALUATE, property_file=report, json_path=ours.MAP_PATH)
        builder = ModelBuilder(
            image_uri=config.image_uri,
            s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
            role_arn=config.role_arn,
            sagemaker_session=self.session,
        )
        return ModelStep(
            name=ours.REGISTER,
            step_args=builder.register(
                model_package_group_name=registry.model_package_group,
                content_types=list(registry.content_types),
                response_types=list(registry.response_types),
                inference_instances=list(registry.inference_instance_types),
                transform_instances=list(registry.transform_instance_types),
                approval_status=registry.approval_status,
                model_metrics=ModelMetrics(
                    model_statistics=MetricsSource(
                        content_type="application/json",
                        s3_uri=Join(
                            on="/",
                            values=[
                                evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                                ours.EVALUATION_FILE,
                            ],
                        ),
                    )
                ),
                customer_metadata_properties={
                    "TestMap": Join(on="", values=[test_map]),
                    "TrainingJobName": train.properties.TrainingJobName,
                    **{
                        name: JsonGet(step_name=ours.EVALUATE, property_file=report, json_path=path)
                        for name, path in ours.DATASET_METADATA.items()
                    },
                },
                domain="COMPUTER_VISION",
                task="OBJECT_DETECTION",
            ),
            retry_policies=[self.service],
        )

    def check_map(self, report: Any, *, register: Any) -> Any:
        from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
        from sagemaker.core.workflow.functions import Join, JsonGet
        from sagemaker.mlops.workflow.condition_step import ConditionStep
        from sagemaker.mlops.workflow.fail_step import FailStep

        test_map = JsonGet(step_name=ours.EVALUATE, property_file=report, json_path=ours.MAP_PATH)
        floor = self.config.evaluation.map_threshold
        conditions = [
            ConditionGreaterThanOrEqualTo(left=test_map, right=self.params["MapThreshold"]),
            ConditionGreaterThanOrEqualTo(left=test_map, right=floor),
        ]
        champion_parts: list[Any] = []
        if self.config.model_registry.min_improvement is not None:
            summary = JsonGet(step_name=ours.EVALUATE, property_file=report, json_path=ours.COMPARISON_PATH)
            champion_parts = [" or does not beat the champion (", summary, ")"]
            required = JsonGet(step_name=ours.EVALUATE, property_file=report, json_path=ours.REQUIRED_MAP_PATH)
            conditions.append(ConditionGreaterThanOrEqualTo(left=test_map, right=required))
        fail = FailStep(
            name=ours.FAIL,
            error_message=Join(
                on="",
                values=[
                    "Test mAP ",
                    test_map,
                    " is below the threshold ",
                    self.params["MapThreshold"],
                    f" or the config's floor {floor!r}",
                    *champion_parts,
                    ": the model was not registered",
                ],
            ),
        )
        return ConditionStep(name=ours.CHECK_MAP, conditions=conditions, if_steps=[register], else_steps=[fail])

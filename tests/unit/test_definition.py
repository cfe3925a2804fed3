from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline_def import build_definition
from pipeline_def.config import ConfigError, PipelineConfig
from pipeline_def.definition import parameters
from pipeline_def.expressions import EXECUTION_VARIABLES, references
from pipeline_def.metrics import EPOCH_METRICS, metric_definitions
from tests.conftest import REPO, ConfigFactory
from tests.unit.definition_tools import (
    all_steps,
    api_errors,
    load_schema,
    property_path_error,
    resolve,
    step_dependencies,
    steps_by_name,
)

Json = Any


@pytest.fixture(scope="module")
def definition(default_config: PipelineConfig) -> Json:
    return json.loads(build_definition(default_config))


@pytest.fixture(scope="module")
def steps(definition: Json) -> dict[str, Json]:
    return steps_by_name(definition)


def test_validates_against_the_pipeline_definition_schema(shared: Path, definition: Json) -> None:
    schema = load_schema(shared / "schemas" / "pipeline-definition.current.schema.json")
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(definition)
    ]
    assert errors == []


def test_schema_check_catches_a_malformed_step(shared: Path, definition: Json) -> None:
    # The check above must be able to fail: a condition without Conditions is refused
    schema = load_schema(shared / "schemas" / "pipeline-definition.current.schema.json")
    broken = json.loads(json.dumps(definition))
    del broken["Steps"][3]["Arguments"]["Conditions"]
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


@pytest.mark.parametrize("name", ["Preprocess", "Train", "Evaluate", "Register"])
def test_step_arguments_match_the_sagemaker_api(steps: dict[str, Json], name: str) -> None:
    # botocore's own model of CreateProcessingJob / CreateTrainingJob / CreateModelPackage
    assert api_errors(steps[name]) == ""


def test_api_check_catches_a_wrong_field(steps: dict[str, Json]) -> None:
    train = json.loads(json.dumps(steps["Train"]))
    train["Arguments"]["ResourceConfig"]["InstanceCount"] = "one"
    train["Arguments"]["StoppingCondition"]["MaxRuntimeSecs"] = 5
    errors = api_errors(train)
    assert "InstanceCount" in errors
    assert "MaxRuntimeSecs" in errors


def test_version_and_no_volatile_content(definition: Json) -> None:
    assert definition["Version"] == "2020-12-01"
    text = json.dumps(definition)
    assert not re.search(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}T|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}", text)


def test_same_config_same_bytes_in_one_process(default_config: PipelineConfig) -> None:
    assert build_definition(default_config) == build_definition(PipelineConfig.from_file())


def test_same_config_same_bytes_across_processes(default_config: PipelineConfig) -> None:
    # Given two fresh interpreters with different hash seeds, When each builds from the same file
    code = "import sys; from pipeline_def import *; sys.stdout.write(build_definition(PipelineConfig.from_file()))"
    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, check=True, timeout=120
        )
        outputs.append(result.stdout)
    # Then the bytes are identical to each other and to this process's
    assert outputs[0] == outputs[1] == build_definition(default_config).encode()


def test_build_needs_no_sagemaker_sdk_nor_boto3() -> None:
    # The definition-sync Lambda must stay small and start fast
    code = (
        "import sys; from pipeline_def import *; build_definition(PipelineConfig.from_file()); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'boto3', 'botocore')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_step_graph_is_exactly_the_designed_one(definition: Json) -> None:
    top = [(s["Name"], s["Type"]) for s in definition["Steps"]]
    assert top == [
        ("Preprocess", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckMap", "Condition"),
    ]
    branches = definition["Steps"][3]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in branches["IfSteps"]] == [("Register", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in branches["ElseSteps"]] == [("Fail", "Fail")]
    assert step_dependencies(definition) == {
        "Preprocess": set(),
        "Train": {"Preprocess"},
        "Evaluate": {"Preprocess", "Train"},
        "CheckMap": {"Evaluate"},
        "Register": {"Train", "Evaluate"},
        "Fail": {"Evaluate"},
    }


def _step_reference_problem(named: dict[str, Json], rest: str) -> str | None:
    """What is wrong with a `Steps.<name>.<path>` reference, if anything."""
    target_name, _, path = rest.partition(".")
    target = named.get(target_name)
    if target is None:
        return f"unknown step {target_name}"
    if path.startswith("PropertyFiles."):
        files = {f["PropertyFileName"] for f in target.get("PropertyFiles", [])}
        return None if path.removeprefix("PropertyFiles.") in files else f"{target_name} has no property file in {rest}"
    if error := property_path_error(target, path):
        return error
    output = re.search(r"Outputs\['([^']+)'\]", path)
    if output and output[1] not in {o["OutputName"] for o in target["Arguments"]["ProcessingOutputConfig"]["Outputs"]}:
        return f"{target_name} has no output {output[1]}"
    return None


def _reference_problem(declared: set[str], named: dict[str, Json], ref: str) -> str | None:
    kind, _, rest = ref.partition(".")
    if kind == "Parameters":
        return None if rest in declared else f"undeclared parameter {rest}"
    if kind == "Execution":
        return None if ref in EXECUTION_VARIABLES else f"unknown execution variable {ref}"
    if kind == "Steps":
        return _step_reference_problem(named, rest)
    return f"unknown reference {ref}"


def test_every_reference_points_at_something_that_exists(definition: Json) -> None:
    declared = {p["Name"] for p in definition["Parameters"]}
    named = steps_by_name(definition)
    problems = []
    for step in all_steps(definition):
        body = step["Arguments"] if step["Type"] != "Condition" else step["Arguments"]["Conditions"]
        for ref in references(body):
            if problem := _reference_problem(declared, named, ref):
                problems.append(f"{step['Name']}: {problem}")
    assert problems == []


def test_property_files_name_a_declared_output(steps: dict[str, Json]) -> None:
    evaluate = steps["Evaluate"]
    outputs = {o["OutputName"] for o in evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    assert "evaluation" in outputs


def test_reference_check_catches_a_dangling_get(definition: Json) -> None:
    assert property_path_error(steps_by_name(definition)["Train"], "ModelArtifacts.S3ModelArtefacts") != ""
    assert property_path_error(steps_by_name(definition)["Train"], "ModelArtifacts.S3ModelArtifacts") == ""


def s3_output_locations(definition: Json) -> dict[str, Json]:
    found = {}
    for step in all_steps(definition):
        args = step["Arguments"]
        for output in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
            found[f"{step['Name']}/{output['OutputName']}"] = output["S3Output"]["S3Uri"]
        if "OutputDataConfig" in args:
            found[f"{step['Name']}/model"] = args["OutputDataConfig"]["S3OutputPath"]
        if "CheckpointConfig" in args:
            found[f"{step['Name']}/checkpoints"] = args["CheckpointConfig"]["S3Uri"]
    return found


def test_every_s3_output_is_inside_its_execution_folder(definition: Json) -> None:
    locations = s3_output_locations(definition)
    assert set(locations) == {
        "Preprocess/train",
        "Preprocess/validation",
        "Preprocess/test",
        "Preprocess/report",
        "Train/model",
        "Train/checkpoints",
        "Evaluate/evaluation",
    }
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    for where, location in locations.items():
        step, name = where.split("/")
        run_a = resolve(location, defaults, {"PipelineExecutionId": "run-a"})
        run_b = resolve(location, defaults, {"PipelineExecutionId": "run-b"})
        assert run_a == f"s3://scratch-detector-123456789012/pipeline/scratch-detector/run-a/{step}/{name}"
        assert run_a != run_b


def test_run_time_parameters_with_config_defaults(definition: Json, default_config: PipelineConfig) -> None:
    declared = {p["Name"]: p for p in definition["Parameters"]}
    hp = default_config.training.hyperparameters
    expected = {
        "NumEpochs": ("Integer", hp.epochs),
        "LearningRate": ("Float", hp.learning_rate),
        "BatchSize": ("Integer", hp.batch_size),
        "WarmupEpochs": ("Integer", hp.warmup_epochs),
        "Backbone": ("String", hp.backbone),
        "Seed": ("Integer", hp.seed),
        "DataWidth": ("Integer", hp.data_width),
        "DataHeight": ("Integer", hp.data_height),
        "AnchorMatchIou": ("Float", hp.anchor_match_iou),
        "IgnoreIou": ("Float", hp.ignore_iou),
        "GiouLossWeight": ("Float", hp.giou_loss_weight),
        "MapThreshold": ("Float", default_config.evaluation.map_threshold),
        "TrainingInstanceType": ("String", default_config.training.instance_type),
        "TrainingInstanceCount": ("Integer", default_config.training.instance_count),
        "ProcessingInstanceType": ("String", default_config.preprocess.instance_type),
        "EvaluationInstanceType": ("String", default_config.evaluation.instance_type),
        "DataAsOf": ("String", ""),
    }
    assert {name: (p["Type"], p["DefaultValue"]) for name, p in declared.items()} == expected
    assert declared["Backbone"]["EnumValues"] == ["mobilenet1.0", "mobilenet0.25", "darknet53"]


def test_every_parameter_is_used(definition: Json) -> None:
    used = {ref.removeprefix("Parameters.") for ref in references(definition["Steps"]) if ref.startswith("Parameters.")}
    assert used == {p["Name"] for p in definition["Parameters"]}


def test_hyperparameters_reach_the_training_job(steps: dict[str, Json], default_config: PipelineConfig) -> None:
    defaults = {name: p.default for name, p in parameters(default_config).items()}
    hyper = resolve(steps["Train"]["Arguments"]["HyperParameters"], defaults, {})
    assert hyper == {
        "backbone": "mobilenet0.25",
        "epochs": "112",
        "batch_size": "8",
        "learning_rate": "0.002",
        "warmup_epochs": "2",
        "seed": "42",
        "lr_mode": "cosine",
        "lr_decay": "0.1",
        "lr_decay_epochs": "",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "data_width": "320",
        "data_height": "224",
        "mixup": "false",
        "no_mixup_epochs": "20",
        "label_smoothing": "false",
        "random_expand": "false",
        "anchor_match_iou": "0.3",
        "ignore_iou": "0.7",
        "giou_loss_weight": "0.0",
        "val_interval": "1",
        "ema_decay": "0.0",
        "classes": "scratch",
    }
    # a per-run override wins over the config's value
    overridden = resolve(steps["Train"]["Arguments"]["HyperParameters"], {**defaults, "NumEpochs": 3}, {})
    assert overridden["epochs"] == "3"


def test_training_job_settings(steps: dict[str, Json], default_config: PipelineConfig) -> None:
    args = steps["Train"]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400, "MaxWaitTimeInSeconds": 28800}
    assert args["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    assert [c["ChannelName"] for c in args["InputDataConfig"]] == ["train", "validation"]
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert args["AlgorithmSpecification"]["TrainingImage"] == default_config.image_uri


def test_spot_off_drops_the_wait_time(make_config: ConfigFactory) -> None:
    config = make_config(**{"training.spot.enabled": False})
    args = steps_by_name(json.loads(build_definition(config)))["Train"]["Arguments"]
    assert args["EnableManagedSpotTraining"] is False
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 14400}


def test_job_steps_retry_capacity_and_throttling_but_not_a_quota(steps: dict[str, Json]) -> None:
    for name in ("Preprocess", "Train", "Evaluate"):
        retried = {e for policy in steps[name]["RetryPolicies"] for e in policy["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR", "Step.THROTTLING"} <= retried, name
        # a job over an account quota fails at once, naming it: waiting does not raise a quota
        assert "SageMaker.RESOURCE_LIMIT" not in retried, name
        assert all(policy["MaxAttempts"] >= 1 for policy in steps[name]["RetryPolicies"])
    register_retries = {e for p in steps["Register"]["RetryPolicies"] for e in p["ExceptionType"]}
    assert register_retries == {"Step.SERVICE_FAULT", "Step.THROTTLING"}


def test_cache_settings_follow_the_config(steps: dict[str, Json], make_config: ConfigFactory) -> None:
    assert steps["Preprocess"]["CacheConfig"] == {"Enabled": False, "ExpireAfter": "P30D"}
    assert steps["Train"]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    changed = make_config(**{"cache.preprocess": True, "cache.train": False, "cache.expire_after": "PT12H"})
    rebuilt = steps_by_name(json.loads(build_definition(changed)))
    assert rebuilt["Preprocess"]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "PT12H"}
    assert rebuilt["Train"]["CacheConfig"] == {"Enabled": False, "ExpireAfter": "PT12H"}


TEST_MAP = {
    "Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
        "Path": "metrics.map.value",
    }
}


def test_condition_compares_test_map_with_the_run_threshold_and_the_config_floor(
    steps: dict[str, Json], default_config: PipelineConfig
) -> None:
    run, floor = steps["CheckMap"]["Arguments"]["Conditions"]
    threshold = {"Get": "Parameters.MapThreshold"}
    assert run == {"Type": "GreaterThanOrEqualTo", "LeftValue": TEST_MAP, "RightValue": threshold}
    # a constant, not a parameter: no run (API, schedule or direct StartPipelineExecution) can lower it
    assert floor == {
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": TEST_MAP,
        "RightValue": default_config.evaluation.map_threshold,
    }


@pytest.mark.parametrize(
    ("test_map", "run_threshold", "registered"), [(0.5, 0.0, True), (0.2, 0.0, False), (0.5, 0.6, False)]
)
def test_a_run_threshold_below_the_floor_does_not_register_a_model_below_it(
    steps: dict[str, Json], test_map: float, run_threshold: float, registered: bool
) -> None:
    # Given the config's floor 0.3, When a run asks for a lower (or higher) threshold, Then the floor still holds
    conditions = steps["CheckMap"]["Arguments"]["Conditions"]
    values = [resolve(c["RightValue"], {"MapThreshold": run_threshold}, {}) for c in conditions]
    assert all(test_map >= float(v) for v in values) is registered


def test_fail_message_states_map_threshold_and_floor(steps: dict[str, Json]) -> None:
    message = resolve(steps["Fail"]["Arguments"]["ErrorMessage"], {"MapThreshold": 0.3}, {})
    assert message == (
        "Test mAP {metrics.map.value} is below the threshold 0.3 or the config's floor 0.3: "
        "the model was not registered"
    )


def test_the_gate_is_not_a_parameter(definition: Json, steps: dict[str, Json], default_config: PipelineConfig) -> None:
    # the registration status and the data a model is judged on are the config's, not a run's
    declared = {p["Name"] for p in definition["Parameters"]}
    assert {"ModelApprovalStatus", "InputDataUri"}.isdisjoint(declared)
    assert steps["Register"]["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    (store,) = steps["Preprocess"]["Arguments"]["ProcessingInputs"]
    assert store["S3Input"]["S3Uri"] == default_config.feature_group.offline_store_uri


CHAMPION_ARGS = ["--model-package-group", "scratch-detector"]
MANIFEST_ARGS = [
    "--manifest-uri",
    "{Steps.Preprocess.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri}/manifest.jsonl",
]


@pytest.mark.parametrize(
    ("evaluation", "min_improvement", "expected"),
    [
        ({}, None, ["--score-threshold-floor", "0.1", *CHAMPION_ARGS, *MANIFEST_ARGS]),
        ({"score_threshold_floor": 0.2, "score_threshold": 0.4}, 0.02,
         ["--score-threshold-floor", "0.2", "--score-threshold", "0.4", *CHAMPION_ARGS, "--min-improvement", "0.02",
          *MANIFEST_ARGS]),
    ],
)  # fmt: skip
def test_evaluate_gets_the_threshold_floor_the_champion_and_what_the_config_sets(
    default_config: PipelineConfig, evaluation: dict[str, float], min_improvement: float | None, expected: list[str]
) -> None:
    data = default_config.model_dump(mode="json")
    data["evaluation"] = {**data["evaluation"], "score_threshold": None, "score_threshold_floor": 0.1, **evaluation}
    data["model_registry"]["min_improvement"] = min_improvement

    steps = steps_by_name(json.loads(build_definition(PipelineConfig.from_dict(data))))

    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert [resolve(argument, {}, {}) for argument in arguments] == expected


def test_the_champion_is_the_registrys_not_a_parameter(definition: Json, steps: dict[str, Json]) -> None:
    # Evaluate reads the group's newest Approved version itself: no run (API, schedule or a direct
    # StartPipelineExecution) can name a weaker champion, or none, to lower the min_improvement bar
    declared = {p["Name"] for p in definition["Parameters"]}
    assert not {name for name in declared if name.startswith("Champion")}
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--model-package-group") + 1] == "scratch-detector"


def test_min_improvement_adds_a_condition_on_the_champion_and_both_figures_to_the_fail_message(
    default_config: PipelineConfig,
) -> None:
    data = default_config.model_dump(mode="json")
    data["model_registry"]["min_improvement"] = 0.05

    steps = steps_by_name(json.loads(build_definition(PipelineConfig.from_dict(data))))

    threshold, floor, champion = steps["CheckMap"]["Arguments"]["Conditions"]
    assert threshold["RightValue"] == {"Get": "Parameters.MapThreshold"}
    assert floor["RightValue"] == 0.3
    assert champion["Type"] == "GreaterThanOrEqualTo"
    assert champion["LeftValue"] == threshold["LeftValue"]
    assert champion["RightValue"]["Std:JsonGet"]["Path"] == "comparison.required_map"
    message = resolve(steps["Fail"]["Arguments"]["ErrorMessage"], {"MapThreshold": 0.3}, {})
    assert message == (
        "Test mAP {metrics.map.value} is below the threshold 0.3 or the config's floor 0.3 "
        "or does not beat the champion ({comparison.summary}): the model was not registered"
    )


def test_register_model(steps: dict[str, Json], default_config: PipelineConfig) -> None:
    args = steps["Register"]["Arguments"]
    assert args["ModelPackageGroupName"] == "scratch-detector"
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    (container,) = args["InferenceSpecification"]["Containers"]
    assert container["Image"] == default_config.image_uri
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    # what serve takes and answers, and its default threshold: the evaluation's
    assert args["InferenceSpecification"]["SupportedContentTypes"] == ["image/jpeg", "image/png", "application/x-image"]
    assert args["InferenceSpecification"]["SupportedResponseMIMETypes"] == ["application/json"]
    # serving's default threshold: the one evaluation.json says it counted with (the model's own, or the config's)
    report = {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    threshold = {"Std:JsonGet": {"PropertyFile": report, "Path": "score_threshold"}}
    assert container["Environment"] == {"SCORE_THRESHOLD": {"Std:Join": {"On": "", "Values": [threshold]}}}
    statistics = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert resolve(statistics["S3Uri"], {}, {}) == (
        "{Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri}/evaluation.json"
    )
    assert args["MetadataProperties"] == {"GeneratedBy": {"Get": "Execution.PipelineExecutionArn"}}
    linked = resolve(
        args["CustomerMetadataProperties"],
        {"MapThreshold": 0.3, "Backbone": "b", "NumEpochs": 4},
        {"PipelineExecutionArn": "arn:exec"},
    )
    assert linked["PipelineExecutionArn"] == "arn:exec"
    assert linked["TestMap"] == "{metrics.map.value}"
    assert linked["MapThreshold"] == "0.3"
    assert linked["MapFloor"] == "0.3"
    # the data it learned from, as evaluation.json names it
    assert (linked["DataAsOf"], linked["DataManifest"], linked["DataManifestSha256"]) == (
        "{dataset.as_of}",
        "{dataset.manifest_uri}",
        "{dataset.manifest_sha256}",
    )


def test_the_run_reads_its_data_as_of_the_data_as_of_parameter(steps: dict[str, Json]) -> None:
    # Preprocess cuts the store and reads the image versions at the run's DataAsOf ("" by default: its own start)
    arguments = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--data-as-of") + 1] == {"Get": "Parameters.DataAsOf"}
    # and nothing else reads it: it chooses the data's time, not the gate (see the definition's docstring)
    readers = [name for name, step in steps.items() if "Parameters.DataAsOf" in set(references(step))]
    assert readers == ["Preprocess"]


def test_evaluate_reads_the_runs_dataset_report_and_manifest(steps: dict[str, Json]) -> None:
    inputs = {i["InputName"]: i["S3Input"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    report = {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"}
    assert inputs["dataset"]["S3Uri"] == report
    assert inputs["dataset"]["LocalPath"] == "/opt/ml/processing/input/dataset"
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--manifest-uri") + 1] == {
        "Std:Join": {"On": "/", "Values": [report, "manifest.jsonl"]}
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("model_registry", "inference_instance_types"), ["ml.m5.large", "ml.g4dn.xlarge"]),
        (("model_registry", "transform_instance_types"), ["ml.p3.2xlarge"]),
        (("training", "instance_type"), "ml.g5.xlarge"),
    ],
)
def test_the_cpu_image_is_never_offered_on_gpu_instances(
    default_config: PipelineConfig, path: tuple[str, str], value: object
) -> None:
    data = default_config.model_dump(mode="json")
    data[path[0]][path[1]] = value

    with pytest.raises(ConfigError, match=rf"image_variant is cpu.*{path[0]}\.{path[1]}: ml\.[gp]"):
        PipelineConfig.from_dict(data)
    # the GPU build may
    PipelineConfig.from_dict({**data, "image_variant": "gpu"})


@pytest.mark.parametrize("kind", ["ml.p5.48xlarge", "ml.g6.xlarge", "ml.inf2.xlarge", "ml.trn1.2xlarge"])
def test_the_gpu_image_is_refused_on_accelerators_its_cuda_build_cannot_use(
    default_config: PipelineConfig, kind: str
) -> None:
    data = {**default_config.model_dump(mode="json"), "image_variant": "gpu"}
    data["training"]["instance_type"] = kind

    with pytest.raises(ConfigError, match=rf"image_variant is gpu .*training\.instance_type: {re.escape(kind)}"):
        PipelineConfig.from_dict(data)


def test_tags_reach_every_job_and_the_model_package(steps: dict[str, Json], make_config: ConfigFactory) -> None:
    for name in ("Preprocess", "Train", "Evaluate", "Register"):
        assert steps[name]["Arguments"]["Tags"] == [{"Key": "project", "Value": "scratch-detector"}]
    untagged = steps_by_name(json.loads(build_definition(make_config(tags={}))))
    assert all("Tags" not in untagged[name]["Arguments"] for name in ("Preprocess", "Train", "Evaluate", "Register"))


def test_config_values_reach_the_definition(make_config: ConfigFactory) -> None:
    config = make_config(
        **{
            "training.hyperparameters.epochs": 7,
            "evaluation.map_threshold": 0.55,
            "preprocess.split": {"train": 0.8, "validation": 0.1, "test": 0.1},
            "training.volume_size_gb": 50,
        }
    )
    definition = json.loads(build_definition(config))
    declared = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert declared["NumEpochs"] == 7
    assert declared["MapThreshold"] == 0.55
    named = steps_by_name(definition)
    arguments = named["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--train-ratio") + 1] == "0.8"
    assert named["Train"]["Arguments"]["ResourceConfig"]["VolumeSizeInGB"] == 50


def test_metric_regexes_read_the_epoch_line() -> None:
    line = "epoch=12 obj_loss=1.25 center_loss=0.5 scale_loss=2.5e-01 cls_loss=0.125 box_loss=0.75 lr=0.001 speed=5.9"
    line += " val_map=0.4567 ema_val_map=0.5678"
    values = {}
    for definition in metric_definitions():
        match = re.search(definition["Regex"], line)
        assert match, definition
        values[definition["Name"]] = float(match[1])
    assert values == {
        "train:obj_loss": 1.25,
        "train:center_loss": 0.5,
        "train:scale_loss": 0.25,
        "train:cls_loss": 0.125,
        "train:box_loss": 0.75,
        "train:learning_rate": 0.001,
        "train:images_per_second": 5.9,
        "validation:map": 0.4567,
        "validation:ema_map": 0.5678,
    }
    assert len(metric_definitions()) == len(EPOCH_METRICS)


def test_metric_regexes_ignore_other_lines() -> None:
    validation = next(d["Regex"] for d in metric_definitions() if d["Name"] == "validation:map")
    assert re.search(validation, "epoch=3 obj_loss=1.0 center_loss=1 scale_loss=1 cls_loss=1 lr=0.1 speed=5") is None
    assert re.search(validation, "loading val_map=0.9 from checkpoint") is None
    # the weight average's figure is not the raw weights'
    assert re.search(validation, "epoch=3 obj_loss=1.0 center_loss=1 scale_loss=1 cls_loss=1 ema_val_map=0.5") is None


@pytest.mark.parametrize("job", ["preprocess", "evaluation"])
def test_more_than_one_instance_per_processing_job_is_refused_with_the_reason(
    default_config: PipelineConfig, job: str
) -> None:
    data = default_config.model_dump(mode="json")
    data[job]["instance_count"] = 2

    with pytest.raises(ConfigError, match=rf"{job}\.instance_count is 2: processing steps run on one instance"):
        PipelineConfig.from_dict(data)


def test_training_on_several_instances_is_the_default_of_a_run_time_parameter(default_config: PipelineConfig) -> None:
    data = default_config.model_dump(mode="json")
    data["training"]["instance_count"] = 2
    data["training"]["hyperparameters"]["batch_size"] = 8

    document = json.loads(build_definition(PipelineConfig.from_dict(data)))

    declared = {p["Name"]: p for p in document["Parameters"]}
    assert (declared["TrainingInstanceCount"]["Type"], declared["TrainingInstanceCount"]["DefaultValue"]) == (
        "Integer",
        2,
    )
    train = next(s for s in document["Steps"] if s["Name"] == "Train")
    assert train["Arguments"]["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}


def test_a_global_batch_that_does_not_split_over_the_training_instances_is_refused(
    default_config: PipelineConfig,
) -> None:
    data = default_config.model_dump(mode="json")
    data["training"]["instance_count"] = 3
    data["training"]["hyperparameters"]["batch_size"] = 8

    with pytest.raises(ConfigError, match=r"batch_size 8 does not split over training.instance_count 3"):
        PipelineConfig.from_dict(data)

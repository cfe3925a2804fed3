"""Our definition against the one the SageMaker Python SDK builds for the same pipeline, offline.

The SDK is a dev dependency only; this shows that both agree on what SageMaker executes: steps,
dependencies, parameters, conditions, property files, retries, caching and output locations.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bench.sdk_baseline import sdk_definition
from pipeline_def import build_definition
from pipeline_def.config import PipelineConfig
from pipeline_def.expressions import references
from tests.unit.definition_tools import all_steps, load_schema, step_dependencies, steps_by_name

pytestmark = [
    pytest.mark.sdk,
    # the SDK's telemetry thread meets the unit tests' socket guard: it ignores the error, and so do we
    pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning"),
]
Json = Any


@pytest.fixture(scope="module")
def sdk(default_config: PipelineConfig) -> Json:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns that a PipelineSession starts no jobs
        return json.loads(sdk_definition(default_config))


@pytest.fixture(scope="module")
def ours(default_config: PipelineConfig) -> Json:
    return json.loads(build_definition(default_config))


def test_same_steps_in_the_same_places(sdk: Json, ours: Json) -> None:
    def shape(definition: Json) -> list[tuple[str, str]]:
        return [(step["Name"], step["Type"]) for step in all_steps(definition)]

    assert shape(ours) == shape(sdk)
    assert [s["Name"] for s in ours["Steps"]] == [s["Name"] for s in sdk["Steps"]]


def test_same_dependencies(sdk: Json, ours: Json) -> None:
    assert step_dependencies(ours) == step_dependencies(sdk)


def test_same_parameters(sdk: Json, ours: Json) -> None:
    assert ours["Parameters"] == sdk["Parameters"]


def test_same_condition_and_branches(sdk: Json, ours: Json) -> None:
    ours_check, sdk_check = steps_by_name(ours)["CheckMap"], steps_by_name(sdk)["CheckMap"]
    assert ours_check["Arguments"]["Conditions"] == sdk_check["Arguments"]["Conditions"]
    for branch in ("IfSteps", "ElseSteps"):
        assert [s["Name"] for s in ours_check["Arguments"][branch]] == [
            s["Name"] for s in sdk_check["Arguments"][branch]
        ]


def test_same_property_files(sdk: Json, ours: Json) -> None:
    def files(definition: Json) -> dict[str, Json]:
        return {s["Name"]: s.get("PropertyFiles", []) for s in all_steps(definition)}

    assert files(ours) == files(sdk)


def test_same_fail_message(sdk: Json, ours: Json) -> None:
    assert steps_by_name(ours)["Fail"]["Arguments"] == steps_by_name(sdk)["Fail"]["Arguments"]


def test_same_retries_and_caching(sdk: Json, ours: Json) -> None:
    ours_steps, sdk_steps = steps_by_name(ours), steps_by_name(sdk)
    for name in ("Preprocess", "Train", "Evaluate", "Register"):
        assert ours_steps[name].get("RetryPolicies") == sdk_steps[name].get("RetryPolicies"), name
        assert ours_steps[name].get("CacheConfig") == sdk_steps[name].get("CacheConfig"), name


def test_each_step_reads_the_same_parameters_and_properties(sdk: Json, ours: Json) -> None:
    ours_steps, sdk_steps = steps_by_name(ours), steps_by_name(sdk)
    for name in ("Preprocess", "Train", "Evaluate", "Register"):
        sdk_refs = set(references(sdk_steps[name]["Arguments"]))
        ours_refs = set(references(ours_steps[name]["Arguments"]))
        # ours also records run facts the SDK example leaves out (execution ARN, per-run knobs as metadata)
        assert sdk_refs <= ours_refs, (name, sdk_refs - ours_refs)
        extra = {ref for ref in ours_refs - sdk_refs if not ref.startswith(("Execution.", "Parameters."))}
        assert extra == set(), name


def test_same_job_resources_and_io(sdk: Json, ours: Json) -> None:
    ours_steps, sdk_steps = steps_by_name(ours), steps_by_name(sdk)
    for name in ("Preprocess", "Evaluate"):
        ours_args, sdk_args = ours_steps[name]["Arguments"], sdk_steps[name]["Arguments"]
        for key in ("ProcessingResources", "ProcessingOutputConfig", "StoppingCondition", "RoleArn", "Tags"):
            assert ours_args[key] == sdk_args[key], (name, key)
        assert ours_args["AppSpecification"] == sdk_args["AppSpecification"], name
        assert [i["S3Input"] for i in ours_args["ProcessingInputs"]] == [
            i["S3Input"] for i in sdk_args["ProcessingInputs"]
        ]
    ours_train, sdk_train = ours_steps["Train"]["Arguments"], sdk_steps["Train"]["Arguments"]
    for key in ("InputDataConfig", "OutputDataConfig", "ResourceConfig", "StoppingCondition", "CheckpointConfig"):
        assert ours_train[key] == sdk_train[key], key
    assert ours_train["EnableManagedSpotTraining"] == sdk_train["EnableManagedSpotTraining"]
    assert (
        ours_train["AlgorithmSpecification"]["MetricDefinitions"]
        == (sdk_train["AlgorithmSpecification"]["MetricDefinitions"])
    )


def test_the_sdk_definition_passes_the_same_schema(shared: Path, sdk: Json) -> None:
    # The schema corrections in load_schema (list ExceptionType, EnumValues) are what the SDK itself emits
    corrected = load_schema(shared / "schemas" / "pipeline-definition.current.schema.json")
    sdk = {key: value for key, value in sdk.items() if value is not None}  # the SDK writes "...Config": null
    assert list(jsonschema.Draft7Validator(corrected).iter_errors(sdk)) == []
    published = json.loads((shared / "schemas" / "pipeline-definition.current.schema.json").read_text())
    assert not jsonschema.Draft7Validator(published).is_valid(sdk)


def test_same_hyperparameters(sdk: Json, ours: Json) -> None:
    ours_hp = steps_by_name(ours)["Train"]["Arguments"]["HyperParameters"]
    sdk_hp = steps_by_name(sdk)["Train"]["Arguments"]["HyperParameters"]
    assert list(ours_hp) == list(sdk_hp)
    for name, value in ours_hp.items():
        # a constant is the same text; a run's knob reads the same parameter (ours casts it to the string the
        # training job's map holds, the SDK leaves that to SageMaker)
        assert (value if isinstance(value, str) else set(references(value))) == (
            sdk_hp[name] if isinstance(sdk_hp[name], str) else set(references(sdk_hp[name]))
        ), name

from __future__ import annotations

from typing import Any

import pytest
import yaml

from local.constraints import problems
from pipeline_def.config import DEFAULT_CONFIG_PATH, ConfigError, PipelineConfig
from pipeline_def.definition import build_definition
from pipeline_def.deploy import create_request
from tests.conftest import ConfigFactory, set_path
from tests.unit.definition_tools import sagemaker_model


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_dict(data, source="test")
    return dict(caught.value.problems)


def test_default_file_is_valid_and_matches_its_text(default_config: PipelineConfig) -> None:
    # Given the repository's defaults, When loaded from the file and from the same text (as SSM holds it)
    from_text = PipelineConfig.from_yaml(DEFAULT_CONFIG_PATH.read_text(), source="ssm:/scratch/config")
    # Then both agree, and the defaults are what the issue fixes: a person approves every model
    assert from_text == default_config
    assert default_config.model_registry.approval_status == "PendingManualApproval"
    assert default_config.training.hyperparameters.backbone == "mobilenet0.25"


def test_round_trips_through_yaml(default_config: PipelineConfig) -> None:
    assert PipelineConfig.from_yaml(default_config.to_yaml()) == default_config


@pytest.mark.parametrize(
    ("dotted", "value", "expected_path", "reason_part"),
    [
        ("training.hyperparameters.epochs", -3, "training.hyperparameters.epochs", "greater than 0"),
        ("training.hyperparameters.epochs", 0, "training.hyperparameters.epochs", "greater than 0"),
        ("evaluation.map_threshold", 1.2, "evaluation.map_threshold", "less than or equal to 1"),
        ("evaluation.map_threshold", -0.1, "evaluation.map_threshold", "greater than or equal to 0"),
        ("training.instance_type", "m5.xlarge", "training.instance_type", "SageMaker instance type"),
        ("preprocess.instance_type", "ml.m5.huge", "preprocess.instance_type", "SageMaker instance type"),
        ("image_uri", "", "image_uri", "ECR image URI"),
        ("image_uri", "docker.io/library/python:3.11", "image_uri", "ECR image URI"),
        ("preprocess.split.train", 0.5, "preprocess.split", "must sum to 1, got 0.8"),
        ("role_arn", "scratch-role", "role_arn", "IAM role ARN"),
        ("training.hyperparameters.backbone", "resnet50", "training.hyperparameters.backbone", "mobilenet1.0"),
        ("training.hyperparameters.data_width", 450, "training.hyperparameters.data_width", "multiple"),
        ("training.hyperparameters.warmup_epochs", 112, "training.hyperparameters", "warmup_epochs (112)"),
        ("training.spot.max_wait_seconds", 600, "training", "max_wait_seconds (600)"),
        ("cache.expire_after", "30 days", "cache.expire_after", "ISO 8601 duration"),
        ("model_registry.approval_status", "Yes", "model_registry.approval_status", "PendingManualApproval"),
        # only a recorded decision approves: a config saying Approved would skip the gate for every run
        ("model_registry.approval_status", "Approved", "model_registry.approval_status", "PendingManualApproval"),
        ("slack.approvers", ["alice"], "slack.approvers.0", "Slack user id"),
        ("classes", ["scratch", "scratch"], "classes", "unique"),
        ("storage.prefix", "/pipeline/", "storage.prefix", "without leading or trailing"),
        # SageMaker's PipelineDisplayName pattern refuses spaces; its descriptions refuse line breaks
        ("pipeline.display_name", "Scratch detector training", "pipeline.display_name", "pipeline display name"),
        ("pipeline.description", "two\nlines", "pipeline.description", "one line"),
    ],
)
def test_bad_value_names_field_and_reason(
    config_dict: dict[str, Any], dotted: str, value: Any, expected_path: str, reason_part: str
) -> None:
    # Given one bad value, When validated, Then the error names its path and says why
    problems = problems_of(set_path(config_dict, dotted, value))
    assert expected_path in problems, problems
    assert reason_part in problems[expected_path]


def test_unknown_field_is_reported_with_its_path(config_dict: dict[str, Any]) -> None:
    set_path(config_dict, "training.hyperparameters.epoch", 3)
    config_dict["colour"] = "red"
    problems = problems_of(config_dict)
    assert problems == {"training.hyperparameters.epoch": "unknown field", "colour": "unknown field"}


def test_missing_field_is_reported(config_dict: dict[str, Any]) -> None:
    del config_dict["evaluation"]["map_threshold"]
    assert problems_of(config_dict) == {"evaluation.map_threshold": "Field required"}


def test_every_problem_is_reported_at_once(config_dict: dict[str, Any]) -> None:
    # Given five independent mistakes
    set_path(config_dict, "training.hyperparameters.epochs", -1)
    set_path(config_dict, "evaluation.map_threshold", 2)
    set_path(config_dict, "image_uri", "")
    set_path(config_dict, "training.instance_type", "big")
    config_dict["surprise"] = True
    # When validated once
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_dict(config_dict, source="ssm:/scratch/config")
    # Then all five are listed, and the message names the source and each path
    paths = {path for path, _ in caught.value.problems}
    assert paths == {
        "training.hyperparameters.epochs",
        "evaluation.map_threshold",
        "image_uri",
        "training.instance_type",
        "surprise",
    }
    message = str(caught.value)
    assert "ssm:/scratch/config" in message
    assert "5 problem(s)" in message
    assert all(path in message for path in paths)


def test_yaml_syntax_error_names_line(config_dict: dict[str, Any]) -> None:
    text = yaml.safe_dump(config_dict) + "tags: [unclosed\n"
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_yaml(text)
    (where, _), *_ = caught.value.problems
    assert where.startswith("line ")


def test_duplicate_yaml_key_is_refused(config_dict: dict[str, Any]) -> None:
    # YAML would silently keep the last of two keys; a typo'd copy must not pass unseen
    text = yaml.safe_dump(config_dict) + "role_arn: arn:aws:iam::123456789012:role/other\n"
    with pytest.raises(ConfigError, match="duplicate key 'role_arn'"):
        PipelineConfig.from_yaml(text)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text"])
def test_non_mapping_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        PipelineConfig.from_yaml(text)


def test_missing_file_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        PipelineConfig.from_file(tmp_path / "absent.yaml")


def test_config_is_immutable(default_config: PipelineConfig) -> None:
    with pytest.raises(ValueError, match="frozen"):
        default_config.training.hyperparameters.epochs = 3  # type: ignore[misc]


def test_the_pipeline_request_keeps_sagemakers_constraints(default_config: PipelineConfig) -> None:
    # Given the request that creates the pipeline from the default config
    request = create_request(default_config, build_definition(default_config), token="t" * 64)
    # Then CreatePipeline's model finds nothing to refuse (its patterns, lengths and ranges)
    shape = sagemaker_model().operation_model("CreatePipeline").input_shape
    assert shape is not None
    assert list(problems(shape, request, "")) == []


@pytest.mark.parametrize("given", ["", None])
def test_an_empty_offline_store_uri_is_left_to_be_looked_up_and_the_definition_refuses_it_unresolved(
    config_dict: dict[str, Any], given: str | None
) -> None:
    config_dict["feature_group"]["offline_store_uri"] = given

    config = PipelineConfig.model_validate(config_dict)

    assert config.feature_group.offline_store_uri is None
    with pytest.raises(ConfigError, match=r"feature_group\.offline_store_uri: not given and not looked up"):
        build_definition(config)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"pipeline.name": "p" * 200}, "would be 290 characters long"),
        ({"storage.prefix": "runs/it's"}, "without !*'()"),
    ],
)
def test_a_manifest_uri_that_the_model_metadata_cannot_hold_is_refused(
    make_config: ConfigFactory, changes: dict[str, str], problem: str
) -> None:
    # the run's manifest URI goes into the model package's CustomerMetadataProperties (1-256 characters, a pattern)
    with pytest.raises(ConfigError) as caught:
        make_config(**changes)
    reason = dict(caught.value.problems)["<root>"]
    assert reason.startswith("storage.prefix and pipeline.name: the run's manifest URI would be ")
    assert problem in reason


def test_the_longest_manifest_uri_a_config_allows_fits_the_model_metadata(make_config: ConfigFactory) -> None:
    # Given a config whose manifest URI is 256 characters long
    base = len("s3://scratch-detector-artifacts/p/") + len("/abcdefghijkl/Preprocess/report/manifest.jsonl")
    config = make_config(**{"storage.bucket": "scratch-detector-artifacts", "storage.prefix": "p",
                            "pipeline.name": "n" * (256 - base)})  # fmt: skip
    uri = f"{config.storage.root}/{config.pipeline.name}/abcdefghijkl/Preprocess/report/manifest.jsonl"
    # Then SageMaker's model takes it as a CustomerMetadataValue, and one character more it would not
    shape = sagemaker_model().shape_for("CustomerMetadataValue")
    assert len(uri) == 256
    assert list(problems(shape, uri, "DataManifest")) == []
    assert list(problems(shape, uri + "x", "DataManifest")) != []

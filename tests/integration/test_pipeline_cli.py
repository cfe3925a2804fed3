"""`python -m pipeline_def` against a moto server: build, diff and upsert as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from pipeline_def import build_definition
from pipeline_def.config import PipelineConfig
from tests.conftest import REPO, set_path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline_def", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path, config_dict: dict[str, Any]) -> Path:
    """The default config under a pipeline name of its own, so tests never share a pipeline."""
    set_path(config_dict, "pipeline.name", f"scratch-{uuid.uuid4().hex[:8]}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config_dict))
    return path


def edit(path: Path, dotted: str, value: Any) -> None:
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(set_path(data, dotted, value)))


def test_build_prints_the_definition(config_file: Path) -> None:
    result = cli("build", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout == build_definition(PipelineConfig.from_file(config_file)) + "\n"


def test_invalid_config_exits_2_naming_every_field(config_file: Path) -> None:
    edit(config_file, "training.hyperparameters.epochs", -1)
    edit(config_file, "evaluation.map_threshold", 3)
    result = cli("build", "--config", str(config_file))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "training.hyperparameters.epochs" in result.stderr
    assert "evaluation.map_threshold" in result.stderr


def test_upsert_creates_then_updates_only_on_change(config_file: Path, aws_env: dict[str, str]) -> None:
    sagemaker = boto3.client("sagemaker")
    name = yaml.safe_load(config_file.read_text())["pipeline"]["name"]

    # Given no pipeline, diff says it would be created and upsert creates it
    planned = cli("diff", "--config", str(config_file), env=aws_env)
    assert planned.returncode == 1, planned.stderr
    assert f"pipeline {name}: would be created" in planned.stdout
    created = cli("upsert", "--config", str(config_file), env=aws_env)
    assert created.returncode == 0, created.stderr
    assert f"pipeline {name}: created" in created.stdout
    deployed = sagemaker.describe_pipeline(PipelineName=name)
    assert deployed["PipelineDefinition"] == build_definition(PipelineConfig.from_file(config_file))
    assert deployed["RoleArn"] == "arn:aws:iam::123456789012:role/scratch-detector-sagemaker"
    assert deployed["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 4}
    first_modified = deployed["LastModifiedTime"]

    # When nothing changed, Then diff and upsert leave the pipeline alone
    unchanged = cli("diff", "--config", str(config_file), env=aws_env)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert f"pipeline {name}: unchanged" in unchanged.stdout
    again = cli("upsert", "--config", str(config_file), env=aws_env)
    assert f"pipeline {name}: unchanged" in again.stdout
    assert sagemaker.describe_pipeline(PipelineName=name)["LastModifiedTime"] == first_modified

    # When the epochs change, Then diff shows the changed default and upsert updates the pipeline
    before = PipelineConfig.from_file(config_file).training.hyperparameters.epochs
    edit(config_file, "training.hyperparameters.epochs", 12)
    changed = cli("diff", "--config", str(config_file), env=aws_env)
    assert changed.returncode == 1
    assert f'-      "DefaultValue": {before},' in changed.stdout
    assert '+      "DefaultValue": 12,' in changed.stdout
    updated = cli("upsert", "--config", str(config_file), env=aws_env)
    assert f"pipeline {name}: updated" in updated.stdout
    definition = json.loads(sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"])
    epochs = next(p for p in definition["Parameters"] if p["Name"] == "NumEpochs")
    assert epochs["DefaultValue"] == 12


def test_formatting_alone_is_not_a_change(config_file: Path, aws_env: dict[str, str]) -> None:
    # Given a deployed pipeline whose stored JSON is formatted differently (as a service may return it)
    config = PipelineConfig.from_file(config_file)
    compact = json.dumps(json.loads(build_definition(config)), separators=(",", ":"), sort_keys=True)
    boto3.client("sagemaker").create_pipeline(
        PipelineName=config.pipeline.name,
        PipelineDisplayName=config.pipeline.display_name,
        PipelineDescription=config.pipeline.description,
        PipelineDefinition=compact,
        ClientRequestToken=uuid.uuid4().hex,
        RoleArn=config.role_arn,
        ParallelismConfiguration={"MaxParallelExecutionSteps": config.pipeline.max_parallel_steps},
    )
    # Then diff sees no change
    result = cli("diff", "--config", str(config_file), env=aws_env)
    assert result.returncode == 0, result.stdout


def test_settings_change_updates_the_pipeline(config_file: Path, aws_env: dict[str, str]) -> None:
    assert cli("upsert", "--config", str(config_file), env=aws_env).returncode == 0
    edit(config_file, "pipeline.description", "A new description")
    result = cli("upsert", "--config", str(config_file), env=aws_env)
    assert "setting changed: PipelineDescription" in result.stdout
    name = yaml.safe_load(config_file.read_text())["pipeline"]["name"]
    assert boto3.client("sagemaker").describe_pipeline(PipelineName=name)["PipelineDescription"] == "A new description"


def test_config_from_the_ssm_parameter(config_file: Path, aws_env: dict[str, str]) -> None:
    # Given the config text in SSM, as the deployed stack keeps it
    parameter = f"/scratch-detector/{uuid.uuid4().hex[:8]}/pipeline-config"
    boto3.client("ssm").put_parameter(Name=parameter, Value=config_file.read_text(), Type="String")
    # Then the CLI builds the same definition from it
    result = cli("build", "--ssm-parameter", parameter, env=aws_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == build_definition(PipelineConfig.from_file(config_file)) + "\n"


def test_invalid_ssm_config_names_the_parameter_and_changes_nothing(config_file: Path, aws_env: dict[str, str]) -> None:
    assert cli("upsert", "--config", str(config_file), env=aws_env).returncode == 0
    name = yaml.safe_load(config_file.read_text())["pipeline"]["name"]
    before = boto3.client("sagemaker").describe_pipeline(PipelineName=name)
    parameter = f"/scratch-detector/{uuid.uuid4().hex[:8]}/pipeline-config"
    bad = yaml.safe_load(config_file.read_text())
    set_path(bad, "preprocess.split.test", 0.5)
    boto3.client("ssm").put_parameter(Name=parameter, Value=yaml.safe_dump(bad), Type="String")

    result = cli("upsert", "--ssm-parameter", parameter, env=aws_env)

    assert result.returncode == 2
    assert f"ssm:{parameter}" in result.stderr
    assert "preprocess.split" in result.stderr
    after = boto3.client("sagemaker").describe_pipeline(PipelineName=name)
    assert after["PipelineDefinition"] == before["PipelineDefinition"]
    assert after["LastModifiedTime"] == before["LastModifiedTime"]


def test_aws_errors_are_reported_without_a_traceback(config_file: Path, aws_env: dict[str, str]) -> None:
    result = cli("build", "--ssm-parameter", "/does/not/exist", env=aws_env)
    assert result.returncode == 3
    assert "AWS error" in result.stderr
    assert "ParameterNotFound" in result.stderr
    assert "Traceback" not in result.stderr

"""The expression forms of the pipeline definition language (2020-12-01) that the definition uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Json = Any

EXECUTION_ID: Json = {"Get": "Execution.PipelineExecutionId"}
EXECUTION_ARN: Json = {"Get": "Execution.PipelineExecutionArn"}
PIPELINE_NAME: Json = {"Get": "Execution.PipelineName"}
EXECUTION_VARIABLES = frozenset(
    {
        "Execution.PipelineExecutionId",
        "Execution.PipelineExecutionArn",
        "Execution.PipelineName",
        "Execution.PipelineArn",
        "Execution.PipelineExecutionStartTime",
        "Execution.CurrentDateTime",
    }
)


def parameter(name: str) -> Json:
    return {"Get": f"Parameters.{name}"}


def step_property(step: str, path: str) -> Json:
    """A property of an earlier step's Describe* response, e.g. `ModelArtifacts.S3ModelArtifacts`."""
    return {"Get": f"Steps.{step}.{path}"}


def processing_output_uri(step: str, output: str) -> Json:
    return step_property(step, f"ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri")


def join(on: str, *values: Json) -> Json:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def as_string(value: Json) -> Json:
    """A number or boolean expression as a string, for the API's string-typed fields."""
    return join("", value)


def json_get(step: str, property_file: str, path: str) -> Json:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"},
            "Path": path,
        }
    }


def is_expression(value: Json) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("Get", "Std:Join", "Std:JsonGet")


def references(value: Json) -> Iterator[str]:
    """Every `Get` target inside a JSON value, including the property files of `Std:JsonGet`."""
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            yield value["Get"]
            return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)

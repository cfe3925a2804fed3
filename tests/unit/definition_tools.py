"""Reading a built definition the way SageMaker would: steps, references, API shapes, resolved values."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from pipeline_def.expressions import is_expression, references

Json = Any

# The API behind each step type, and the name the pipeline service fills in for every job
STEP_APIS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "pipelines-placeholder"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName": "pipelines-placeholder"}),
    "RegisterModel": ("CreateModelPackage", {}),
}
# The Describe* response whose fields `Steps.<name>.<path>` reads
STEP_PROPERTIES = {
    "Processing": "DescribeProcessingJob",
    "Training": "DescribeTrainingJob",
    "RegisterModel": "DescribeModelPackage",
}
PATH_PART = re.compile(r"(\w+)(?:\[(?:'([^']*)'|([0-9]+))\])?")


@cache
def sagemaker_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def load_schema(path: Path) -> Json:
    """The pipeline-definition schema, with the two places where it contradicts the language corrected.

    - RetryPolicy.ExceptionType is a list of exception types (the AWS retry-policy docs' JSON schema,
      `"ExceptionType": [String]`, and what the SageMaker SDK emits); the schema has a single string.
    - String parameters may declare EnumValues (the SDK's ParameterString(enum_values=...)); the
      schema's StringParameter forbids it.
    """
    schema = json.loads(path.read_text())
    definitions = schema["definitions"]
    retry = definitions["RetryPolicy"]["properties"]
    retry["ExceptionType"] = {"type": "array", "minItems": 1, "items": copy.deepcopy(retry["ExceptionType"])}
    definitions["StringParameter"]["properties"]["EnumValues"] = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string"},
    }
    return schema


def all_steps(definition: Json) -> Iterator[Json]:
    """Every step, including those nested in a condition's branches, in definition order."""
    for step in definition["Steps"]:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps({"Steps": step["Arguments"].get("IfSteps", [])})
            yield from all_steps({"Steps": step["Arguments"].get("ElseSteps", [])})


def steps_by_name(definition: Json) -> dict[str, Json]:
    return {step["Name"]: step for step in all_steps(definition)}


def placeholder(shape: Shape) -> Any:
    """A value of the shape's type standing for an expression that SageMaker resolves at run time."""
    minimum = shape.metadata.get("min", 0)
    if shape.type_name == "string":
        return "x" * max(1, int(minimum))
    if shape.type_name in ("integer", "long"):
        return max(1, int(minimum))
    if shape.type_name in ("float", "double"):
        return max(0.5, float(minimum))
    if shape.type_name == "boolean":
        return True
    raise AssertionError(f"no placeholder for an expression in a {shape.type_name} field ({shape.name})")


def with_placeholders(value: Any, shape: Shape) -> Any:
    if is_expression(value):
        return placeholder(shape)
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {key: with_placeholders(item, members[key]) if key in members else item for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [with_placeholders(item, shape.member) for item in value]  # type: ignore[attr-defined]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: with_placeholders(item, shape.value) for key, item in value.items()}  # type: ignore[attr-defined]
    return value


def api_errors(step: Json) -> str:
    """botocore's own parameter validation of a step's Arguments, as the service would receive them."""
    operation, filled_in = STEP_APIS[step["Type"]]
    input_shape = sagemaker_model().operation_model(operation).input_shape
    assert input_shape is not None
    params = {**filled_in, **with_placeholders(step["Arguments"], input_shape)}
    report = ParamValidator().validate(params, input_shape)
    return str(report.generate_report()) if report.has_errors() else ""


def property_path_error(step: Json, path: str) -> str:
    """Why `Steps.<step>.<path>` names no field of the step's Describe* response ('' if it does)."""
    operation = STEP_PROPERTIES.get(step["Type"])
    if operation is None:
        return f"a {step['Type']} step has no properties"
    output_shape = sagemaker_model().operation_model(operation).output_shape
    assert output_shape is not None
    shape: Shape = output_shape
    for part in path.split("."):
        match = PATH_PART.fullmatch(part)
        if not match or shape.type_name != "structure" or match[1] not in shape.members:  # type: ignore[attr-defined]
            return f"{operation} has no {part!r} in {path!r}"
        shape = shape.members[match[1]]  # type: ignore[attr-defined]
        if match[2] is not None or match[3] is not None:
            if shape.type_name == "list":
                shape = shape.member  # type: ignore[attr-defined]
            elif shape.type_name == "map":
                shape = shape.value  # type: ignore[attr-defined]
            else:
                return f"{part!r} indexes a {shape.type_name} in {path!r}"
    return ""


def step_dependencies(definition: Json) -> dict[str, set[str]]:
    """Which steps each step reads from (property references and property files)."""
    graph = {}
    for step in all_steps(definition):
        own = {"Arguments": step["Arguments"]}
        if step["Type"] == "Condition":
            own = {"Conditions": step["Arguments"]["Conditions"]}
        graph[step["Name"]] = {ref.split(".")[1] for ref in references(own) if ref.startswith("Steps.")}
        graph[step["Name"]] |= set(step.get("DependsOn", []))
    return graph


def resolve(value: Json, parameters: dict[str, Any], execution: dict[str, str]) -> Any:
    """Evaluate Get/Std:Join over parameters and execution variables (step properties stay symbolic)."""
    if isinstance(value, list):
        return [resolve(item, parameters, execution) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        kind, _, name = value["Get"].partition(".")
        if kind == "Parameters":
            return parameters[name]
        if kind == "Execution":
            return execution[name]
        return "{" + value["Get"] + "}"
    if set(value) == {"Std:JsonGet"}:
        return "{" + value["Std:JsonGet"]["Path"] + "}"
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolve(item, parameters, execution)) for item in join["Values"])
    return {key: resolve(item, parameters, execution) for key, item in value.items()}

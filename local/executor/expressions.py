"""The definition's expressions, evaluated as SageMaker Pipelines does: Get (parameters, execution variables,
step properties, property files), Std:Join and Std:JsonGet."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


class ExpressionError(ValueError):
    """An expression that cannot be evaluated: the step that holds it fails with this message."""


class PropertyFiles(Protocol):
    def load(self, step: str, name: str) -> Any: ...


@dataclass
class Scope:
    """What an execution's expressions can see."""

    parameters: dict[str, Any]
    execution: dict[str, str]
    # per step: its properties, shaped like the Describe* answer of its job (what `Steps.X....` reads)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: PropertyFiles | None = None


def evaluate(value: Any, scope: Scope) -> Any:
    """`value` with every expression in it replaced by its value (recursively through dicts and lists)."""
    if isinstance(value, list):
        return [evaluate(v, scope) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return get(value["Get"], scope)
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return str(join["On"]).join(_text(evaluate(v, scope)) for v in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        return json_get(value["Std:JsonGet"], scope)
    return {k: evaluate(v, scope) for k, v in value.items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get(path: str, scope: Scope) -> Any:
    root, _, rest = path.partition(".")
    if root == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(f"Get {path}: no such parameter")
        return scope.parameters[rest]
    if root == "Execution":
        if rest not in scope.execution:
            raise ExpressionError(f"Get {path}: no such execution variable")
        return scope.execution[rest]
    if root == "Steps":
        step, _, property_path = rest.partition(".")
        if step not in scope.steps:
            raise ExpressionError(f"Get {path}: step {step} has not run")
        return walk(scope.steps[step], property_path, path)
    raise ExpressionError(f"Get {path}: unknown root {root}")


_TOKEN = re.compile(r"([A-Za-z0-9_]+)(?:\[(?:'([^']*)'|(\d+))\])?")


def walk(properties: Any, path: str, whole: str) -> Any:
    """`Outputs['train'].S3Output.S3Uri`: attributes, list items by index or by their *Name field."""
    value = properties
    for part in path.split("."):
        match = _TOKEN.fullmatch(part)
        if match is None:
            raise ExpressionError(f"Get {whole}: cannot read {part!r}")
        name, key, index = match.groups()
        if not isinstance(value, dict) or name not in value:
            raise ExpressionError(f"Get {whole}: no {name}")
        value = value[name]
        if key is not None:
            named = [item for item in value if key in {v for k, v in item.items() if k.endswith("Name")}]
            if not named:
                raise ExpressionError(f"Get {whole}: no item named {key}")
            value = named[0]
        elif index is not None:
            value = value[int(index)]
    return value


def json_get(spec: dict[str, Any], scope: Scope) -> Any:
    reference = spec["PropertyFile"]["Get"] if isinstance(spec["PropertyFile"], dict) else spec["PropertyFile"]
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", reference)
    if match is None or scope.files is None:
        raise ExpressionError(f"Std:JsonGet: {reference} is not a property file")
    document = scope.files.load(match.group(1), match.group(2))
    value = document
    for part in re.findall(r"[^.\[\]]+", spec["Path"]):
        if isinstance(value, list) and part.isdigit():
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise ExpressionError(f"Std:JsonGet: {spec['Path']} is not in {reference} ({json.dumps(document)[:200]})")
    return value


def references(value: Any) -> set[str]:
    """The steps an argument reads (`Get Steps.X...` or a property file of X): its data dependencies."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if set(value) == {"Get"} and str(value["Get"]).startswith("Steps."):
            found.add(str(value["Get"]).split(".")[1])
        else:
            for item in value.values():
                found |= references(item)
    return found

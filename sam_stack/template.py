"""template.yaml read as CloudFormation reads it: its short-form tags, its resources, and its references resolved to
the values the caller gives (the pseudo parameters and the names and attributes CloudFormation computes). Nothing is
filled in that the caller did not give: the local stack gives its own names, `make destroy` the deployed stack's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

# what `!Ref AWS::NoValue` resolves to: the property or list item is left out, as CloudFormation leaves it out
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


_CfnLoader.add_multi_constructor("!", _tag)


class UnresolvedReference(KeyError):
    """A reference that the values given do not resolve. CloudFormation would refuse the template; a value made up
    here (a default, another stack's name) would name something that is not this stack's."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"template: no value for {self.name} (the caller gives every name, attribute and pseudo parameter)"


@dataclass(frozen=True)
class Template:
    """A CloudFormation template, resolved against the values its caller gives: the pseudo parameters, the names
    and attributes CloudFormation would compute, and the parameter values (a parameter not given takes its
    Default). Nothing else is filled in."""

    body: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> Template:
        return cls(yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader))  # noqa: S506 (SafeLoader subclass)

    def resource(self, logical_id: str) -> dict[str, Any]:
        return dict(self.body["Resources"][logical_id])

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.body["Resources"].items() if r["Type"] == kind}

    def parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """Every parameter's value: the one given, else its Default (one with neither is left out)."""
        found = {}
        for name, parameter in self.body.get("Parameters", {}).items():
            if name in given:
                found[name] = given[name]
            elif "Default" in parameter:
                found[name] = str(parameter["Default"])
        return found

    def values(self, given: Mapping[str, str]) -> dict[str, str]:
        """What a reference resolves to: `given`, with the parameters' defaults for the parameters not given."""
        return {**given, **self.parameters(given)}

    def resolve(self, value: Any, given: Mapping[str, str]) -> Any:
        """A property value with Ref, GetAtt, Sub and If resolved to `given` (and the parameters' defaults)."""
        return self._resolve(value, self.values(given))

    def _resolve(self, value: Any, values: dict[str, str]) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else _lookup(values, argument)
            if key == "Fn::GetAtt":
                return _lookup(values, ".".join(argument))
            if key == "Fn::Sub" and isinstance(argument, list):
                text, variables = argument
                return sub(text, {**values, **{k: str(self._resolve(v, values)) for k, v in variables.items()}})
            if key == "Fn::Sub":
                return sub(argument, values)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self._resolve(when_true if self._condition(name, values) else when_false, values)
        if isinstance(value, dict):
            resolved = {k: self._resolve(v, values) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self._resolve(v, values) for v in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str, given: Mapping[str, str]) -> bool:
        """One of the template's Conditions, for `given` (and the parameters' defaults)."""
        return self._condition(name, self.values(given))

    def _condition(self, name: str, values: dict[str, str]) -> bool:
        return self._holds(self.body["Conditions"][name], values)

    def _holds(self, expression: dict[str, Any], values: dict[str, str]) -> bool:
        ((key, argument),) = expression.items()
        if key == "Fn::Equals":
            left, right = (str(self._resolve(side, values)) for side in argument)
            return left == right
        if key == "Fn::Not":
            return not self._holds(argument[0], values)
        if key == "Fn::And":
            return all(self._holds(part, values) for part in argument)
        if key == "Fn::Or":
            return any(self._holds(part, values) for part in argument)
        if key == "Condition":
            return self._condition(argument, values)
        raise KeyError(f"template: condition function {key} is not supported")

    def environment(self, function: str, given: Mapping[str, str]) -> dict[str, str]:
        """A function's environment: Globals first, then its own variables, resolved to `given`."""
        shared = self.body.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        own = self.resource(function)["Properties"].get("Environment", {}).get("Variables", {})
        # Lambda gives the function its LoggingConfig's ApplicationLogLevel, which Powertools takes
        logging_config = {
            **self.body.get("Globals", {}).get("Function", {}).get("LoggingConfig", {}),
            **self.resource(function)["Properties"].get("LoggingConfig", {}),
        }
        runtime = {"AWS_LAMBDA_LOG_LEVEL": logging_config["ApplicationLogLevel"]} if logging_config else {}
        values = self.values(given)
        return {name: str(self._resolve(value, values)) for name, value in {**runtime, **shared, **own}.items()}


def _lookup(values: Mapping[str, str], name: str) -> str:
    if name not in values:
        raise UnresolvedReference(name)
    return values[name]


def sub(text: str, values: Mapping[str, str]) -> str:
    """Fn::Sub over `values`; a name the template uses but `values` lacks is an error, not a blank."""
    return re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda match: _lookup(values, match.group(1)), text)

"""The deploy environments, read from samconfig.toml: `dev` is its `default` section, `prod` its `prod`."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = ROOT / "samconfig.toml"


class RolloutError(Exception):
    """A reason the rollout stops, worded for the person who ran it."""


@dataclass(frozen=True)
class Environment:
    name: str  # the template's Environment parameter: dev or prod
    config_env: str  # samconfig.toml's section, for `sam --config-env`
    stack_name: str
    s3_prefix: str
    parameter_overrides: dict[str, str]

    @property
    def image_variant(self) -> str:
        """The training image this environment runs (the template's ImageVariant)."""
        return self.parameter_overrides.get("ImageVariant", "cpu")

    def overrides_argument(self, **extra: str) -> str:
        """`sam deploy --parameter-overrides` replaces samconfig's overrides, so it carries them too."""
        merged = {**self.parameter_overrides, **extra}
        return " ".join(f'{key}="{value}"' for key, value in merged.items())


def parse_overrides(text: str) -> dict[str, str]:
    """samconfig's `Key="value" Other="value with spaces"` as a dict."""
    return dict(item.split("=", 1) for item in shlex.split(text))


def environments(path: Path = SAMCONFIG) -> dict[str, Environment]:
    config = tomllib.loads(path.read_text())
    found: dict[str, Environment] = {}
    for section, commands in config.items():
        if not isinstance(commands, dict) or "deploy" not in commands:
            continue
        deploy = commands["deploy"]["parameters"]
        overrides = parse_overrides(deploy.get("parameter_overrides", ""))
        name = overrides.get("Environment")
        if name is None:
            raise RolloutError(f"{path.name} [{section}.deploy.parameters]: parameter_overrides has no Environment")
        found[name] = Environment(
            name=name,
            config_env=section,
            stack_name=commands["global"]["parameters"]["stack_name"],
            s3_prefix=deploy.get("s3_prefix", ""),
            parameter_overrides=overrides,
        )
    return found


def environment(name: str, path: Path = SAMCONFIG) -> Environment:
    known = environments(path)
    if name not in known:
        raise RolloutError(f"ENV={name} is not an environment of {path.name}: use one of {', '.join(sorted(known))}")
    return known[name]

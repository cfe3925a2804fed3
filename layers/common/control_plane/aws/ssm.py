"""The SSM parameter that holds the pipeline config text."""

from __future__ import annotations

from typing import Any

from control_plane.aws.clients import LazyClient
from control_plane.aws.errors import not_found_as


class ConfigParameter:
    _ssm = LazyClient("ssm")

    def __init__(self, name: str, ssm: Any = None) -> None:
        self.name = name
        self._client = ssm

    def read(self) -> tuple[str, int]:
        """The config text and its SSM version."""
        with not_found_as(f"SSM parameter {self.name} does not exist"):
            parameter = self._ssm.get_parameter(Name=self.name)["Parameter"]
        return str(parameter["Value"]), int(parameter["Version"])

"""The template's functions, run in this process as Lambda would run them: one invocation at a time per
function (a warm container), with a context object, from the same `functions/<name>/app.py`."""

from __future__ import annotations

import importlib
import sys
import threading
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local.iam import enforce
from local.template import local_values
from sam_stack.template import TEMPLATE, Template

# Lambda puts a layer's python/ folder on the path; here the layer's source folder stands in for it
LAYER = TEMPLATE.parent / "layers" / "common"
if str(LAYER) not in sys.path:
    sys.path.insert(0, str(LAYER))


@dataclass
class Context:
    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_group_name: str = ""
    log_stream_name: str = "local"
    timeout_seconds: int = 20

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class Functions:
    """Every AWS::Serverless::Function of the template, imported on first use."""

    def __init__(self, template: Template) -> None:
        # a fresh import per stack, as a new deployment's cold starts; the layer's cached clients are dropped,
        # as they are bound to the endpoints of the stack they were made for
        for name in [m for m in sys.modules if m.startswith("functions.")]:
            del sys.modules[name]
        self.forget_clients()
        self.template = template
        self.resources = template.of_type("AWS::Serverless::Function")
        self._modules: dict[str, ModuleType] = {}
        self._locks = {name: threading.Lock() for name in self.resources}

    @staticmethod
    def forget_clients() -> None:
        from control_plane.aws import clients

        clients.clear()

    def environment(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """Every function's variables together (they agree: all come from one stack)."""
        merged: dict[str, str] = {}
        for name in self.resources:
            merged.update(self.template.environment(name, local_values(overrides)))
        return merged

    def module(self, name: str) -> ModuleType:
        if name not in self._modules:
            folder = self.resources[name]["Properties"]["CodeUri"].rstrip("/").split("/")[-1]
            self._modules[name] = importlib.import_module(f"functions.{folder}.app")
        return self._modules[name]

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        """One invocation, as the function's role: every AWS call it makes is authorised against that role."""
        timeout = int(self.resources[name]["Properties"].get("Timeout", 20))
        with self._locks[name], enforce.acting_as(enforce.function_identity(name)):
            forget_shared_caches()
            return self.module(name).lambda_handler(event, Context(function_name=name, timeout_seconds=timeout))


def forget_shared_caches() -> None:
    """Each Lambda function has caches of its own (Powertools' parameters and secrets); in this one process they are
    shared, so that one function would read from another's what its own role must be allowed to fetch. Clearing them
    at every invocation fetches more often than Lambda, never less: every read is authorised as its function's."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]

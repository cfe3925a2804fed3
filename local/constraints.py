"""AWS's request constraints in every boto3 client of the process: pattern, length, range and enum.

botocore checks a request's types, required members and minimums before it sends it; the services also refuse a
value that breaks its shape's `pattern`, `max` or `enum` (a 400 ValidationException), and moto does not. After
`install()` every botocore session of the process, made before or after, validates each request against the
loaded service model first, so what AWS would refuse fails here too, naming the operation, the member path and
the constraint. The local stack, every test tier and every job process of the local executor install it.

This module needs only botocore and `regex` (AWS's patterns are Java regular expressions: `\\p{L}` and the like),
because the container's environment loads it too, by path (local/boot/sitecustomize.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import botocore.handlers
import botocore.session
import botocore.validate
import regex
from botocore.exceptions import ClientError
from botocore.model import OperationModel, ServiceModel, Shape

EVENT = "before-parameter-build"
UNIQUE_ID = "local-constraints"

_lock = threading.Lock()
_recorded: list[ConstraintViolation] = []

# Java's POSIX classes are ASCII-only; `regex` reads \p{Alnum} and the like as Unicode classes
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}
_SURROGATE_PAIR = regex.compile(r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})", regex.IGNORECASE)
_POSIX_CLASS = regex.compile(r"\\p\{(" + "|".join(_POSIX) + r")\}")


class ConstraintViolation(ClientError):
    """What the service answers to a request that breaks its model's constraints: a 400 ValidationException
    whose message has one line per broken constraint, in AWS's own words."""

    def __init__(self, operation: str, problems: list[str]) -> None:
        self.operation = operation
        self.problems = problems
        count = len(problems)
        message = f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}"
        response: Any = {
            "Error": {"Code": "ValidationException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        super().__init__(response, operation)


def java_to_python(pattern: str) -> str:
    """A service model's (Java) pattern as a `regex` pattern with the same meaning."""

    def pair(match: regex.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"

    text = _SURROGATE_PAIR.sub(pair, pattern)
    out: list[str] = []
    class_start = -1  # where the character class we are in opened, -1 outside one
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            posix = _POSIX_CLASS.match(text, index)
            if posix:
                ranges = _POSIX[posix.group(1)]
                out.append(ranges if class_start >= 0 else f"[{ranges}]")
                index = posix.end()
                continue
            escape = text[index : index + 2]
            out.append("\\Z" if escape == "\\z" else escape)
            index += 2
            continue
        if char == "[" and class_start < 0:
            class_start = index
        elif char == "]" and class_start >= 0 and index > class_start + 1 + (text[class_start + 1] == "^"):
            class_start = -1  # a "]" first in its class is a literal
        out.append(char)
        index += 1
    return "".join(out)


@cache
def compiled(pattern: str) -> regex.Pattern[str]:
    return regex.compile(java_to_python(pattern), regex.V0)


def _length(value: str | bytes | bytearray) -> int:
    # Java counts a string's UTF-16 code units: an emoji is 2, as the service counts it
    if isinstance(value, str):
        return len(value.encode("utf-16-le", "surrogatepass")) // 2
    return len(value)


class _Wording:
    """AWS's "Value ... at '...' failed to satisfy constraint: Member must" prefix, worded only when a constraint
    is broken (every request walks its whole input; most break nothing)."""

    def __init__(self, value: Any, path: str) -> None:
        self.value, self.path = value, path

    def __format__(self, _: str) -> str:
        shown = repr(self.value)
        shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: Member must"


def problems(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """Every constraint of `shape` (and the shapes inside it) that `value` breaks, as AWS words it.
    Values of the wrong type are left to botocore's own validation, which runs next."""
    kind = _KINDS.get(shape.type_name)
    if kind is not None:
        yield from kind(shape, value, path)


# the members of each kind of shape live on its subclass (StructureShape, ListShape, ...): `node` is typed Any
def _structure(node: Any, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        members = node.members
        for name, member_value in value.items():
            if name in members and member_value is not None:
                yield from problems(members[name], member_value, f"{path}.{name}" if path else name)


def _list(node: Any, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, list | tuple):
        yield from _bounds(node.metadata, len(value), where=_Wording(value, path), measured="length")
        for index, item in enumerate(value):
            yield from problems(node.member, item, f"{path}[{index}]")


def _map(node: Any, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        yield from _bounds(node.metadata, len(value), where=_Wording(value, path), measured="length")
        for key, item in value.items():
            yield from problems(node.key, key, f"{path}.key")
            yield from problems(node.value, item, f"{path}.{key}")


def _string(node: Any, value: Any, path: str) -> Iterator[str]:
    if not isinstance(value, str):
        return
    metadata, where = node.metadata, _Wording(value, path)
    yield from _bounds(metadata, _length(value), where=where, measured="length")
    if "pattern" in metadata and not compiled(metadata["pattern"]).fullmatch(value):
        yield f"{where} satisfy regular expression pattern: {metadata['pattern']}"
    enum = node.enum
    if enum and value not in enum:
        yield f"{where} satisfy enum value set: [{', '.join(enum)}]"


def _blob(node: Any, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, str | bytes | bytearray):
        size = len(value.encode() if isinstance(value, str) else value)
        yield from _bounds(node.metadata, size, where=_Wording(value, path), measured="length")


def _number(node: Any, value: Any, path: str) -> Iterator[str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        yield from _bounds(node.metadata, value, where=_Wording(value, path), measured="value")


_KINDS: dict[str, Callable[[Any, Any, str], Iterator[str]]] = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "blob": _blob,
    **dict.fromkeys(("integer", "long", "float", "double"), _number),
}


def _bounds(metadata: dict[str, Any], measure: float, *, where: _Wording, measured: str) -> Iterator[str]:
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and measure < low:
        yield f"{where} have {measured} greater than or equal to {low}"
    if high is not None and measure > high:
        yield f"{where} have {measured} less than or equal to {high}"


def check(**kwargs: Any) -> None:
    """The `before-parameter-build` handler: refuse the request before it is built, as the service would."""
    params: dict[str, Any] = kwargs["params"]
    model: OperationModel = kwargs["model"]
    if model.input_shape is None:
        return
    found = list(problems(model.input_shape, params, ""))
    if found:
        violation = ConstraintViolation(model.name, found)
        with _lock:
            _recorded.append(violation)
        raise violation


@cache
def _service(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def request_problems(service: str, operation: str, params: dict[str, Any], *, wire: bool = False) -> list[str]:
    """What `service` refuses in an `operation` request that no botocore client checked: the constraints and,
    unless `wire` (a JSON body as received, whose timestamps and blobs are encoded), botocore's own checks
    (required members, types). An operation the model does not have has nothing to check here."""
    model = _service(service)
    if operation not in model.operation_names:
        return []
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return []
    found = []
    if not wire:
        report = botocore.validate.ParamValidator().validate(params, shape)
        lines = report.generate_report().splitlines()[1:] if report.has_errors() else []
        # botocore's minimums are among the constraints below, in AWS's words
        found += [line for line in lines if line and "valid min" not in line]
    return found + list(problems(shape, params, ""))


def install() -> None:
    """Validate every request of every botocore session of this process, those to come included."""
    entry = (EVENT, check)
    if entry not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
    import boto3  # the default session may exist already; the emitter keeps one handler per unique id

    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION._session.register(EVENT, check, unique_id=UNIQUE_ID)


def take() -> list[ConstraintViolation]:
    """The violations raised since the last call (a test that provokes one takes it; the fixture fails on the rest)."""
    with _lock:
        taken = list(_recorded)
        _recorded.clear()
    return taken

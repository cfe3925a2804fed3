"""The identities of the local stack and the statements IAM evaluates for them, as CloudFormation receives them: the
template after the SAM transform (tools/sam_translate.py, run in the SAM tool environment, .tools/sam), each role's
inline policies (SAM's policy templates expanded) and the AWS::IAM::Policy and ManagedPolicy resources attached to
it, resolved to the local stack's names.

AWS-managed policies that SAM attaches (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess, the SQS poller's) grant
what the Lambda service itself does with the role (logs, traces, polling the queue), never a call of our code, so
they are not loaded: a call of ours they would allow must be in the template.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from local.iam import usage
from local.iam.check import Identity
from local.iam.policy import as_list
from local.template import ACCOUNT, STACK, local_values
from sam_stack.template import TEMPLATE, Template, sub

REPO = TEMPLATE.parent
# where the deploy workflow's roles and the stack's permissions boundary are defined
ROLLOUT_ROLES = REPO / "rollout" / "github-oidc.yaml"
SAM_PYTHON = REPO / ".tools" / "sam" / "bin" / "python"
CACHE = REPO / "work" / "iam"


class TranslationUnavailable(RuntimeError):
    """The SAM tool environment is missing: the roles cannot be read as CloudFormation receives them."""


@cache
def translated(template_path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml after the SAM transform, cached by the template's bytes on disk (the transform takes seconds)
    and in the process (a function's role is looked up at every invocation). Callers do not change it."""
    text = template_path.read_bytes()
    cached = CACHE / f"translated-{hashlib.sha256(text).hexdigest()[:16]}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text()))
    if not SAM_PYTHON.exists():
        raise TranslationUnavailable(f"{SAM_PYTHON} is missing: `make venv` ... creates it (the SAM tool environment)")
    done = subprocess.run(  # noqa: S603 (our own tool script in our own tool environment)
        [str(SAM_PYTHON), str(REPO / "tools" / "sam_translate.py"), str(template_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise TranslationUnavailable(f"tools/sam_translate.py failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)["templates"][str(template_path)]
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    return dict(result)


def role_arn(logical_id: str, values: dict[str, str]) -> str:
    """The role's ARN in the local stack: the one the template's values give it, else <stack>-<logical id>."""
    return values.get(f"{logical_id}.Arn") or f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{logical_id}"


def _attached(resources: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Policy documents of AWS::IAM::Policy / ManagedPolicy resources, by the role or user logical id they attach to."""
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in resources.values():
        if resource["Type"] not in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            continue
        properties = resource["Properties"]
        for holder in [*properties.get("Roles", []), *properties.get("Users", [])]:
            if isinstance(holder, dict) and "Ref" in holder:
                found.setdefault(holder["Ref"], []).append(properties["PolicyDocument"])
    return found


def _statements(documents: list[Any], template: Template, values: dict[str, str]) -> tuple[dict[str, Any], ...]:
    statements: list[dict[str, Any]] = []
    for document in documents:
        resolved = template.resolve(document, values)
        statements += [s for s in as_list(resolved.get("Statement", [])) if isinstance(s, dict)]
    return tuple(statements)


def identities(overrides: dict[str, str] | None = None) -> dict[str, Identity]:
    """Every role of the template (after the transform), by logical id, with its statements resolved."""
    return dict(_identities(tuple(sorted((overrides or {}).items()))))


@cache
def _identities(overrides: tuple[tuple[str, str], ...]) -> dict[str, Identity]:
    body = translated()
    template = Template(body)
    values = template.values(local_values(dict(overrides)))
    resources = body["Resources"]
    attached = _attached(resources)
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        documents += attached.get(logical_id, [])
        boundary = template.resolve(resource["Properties"].get("PermissionsBoundary"), values)
        found[logical_id] = Identity(
            logical_id,
            role_arn(logical_id, values),
            usage.without_dropped(logical_id, _statements(documents, template, values)),
            boundaries()[boundary] if boundary else None,
        )
    return found


@cache
def boundaries() -> dict[str, tuple[dict[str, Any], ...]]:
    """The managed policies of rollout/github-oidc.yaml (the roles boundary) by ARN, for the local stack's name: what
    a role of the template that names one as its PermissionsBoundary is capped by."""
    rollout = Template.load(ROLLOUT_ROLES)
    values = {**template_values(), "Stack": STACK}
    found = {}
    for resource in rollout.of_type("AWS::IAM::ManagedPolicy").values():
        properties = resource["Properties"]
        name = _sub_text(properties["ManagedPolicyName"], values)
        document = json.loads(_sub_text(properties["PolicyDocument"], values))
        found[f"arn:aws:iam::{ACCOUNT}:policy/{name}"] = tuple(as_list(document["Statement"]))
    return found


def _sub_text(value: Any, values: dict[str, str]) -> str:
    """An `!Sub [text, {Stack: ...}]` of the rollout template, with the local stack's name for its variables."""
    text = value["Fn::Sub"][0] if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), list) else value
    if isinstance(text, dict) and "Fn::Sub" in text:
        text = text["Fn::Sub"]
    return str(sub(str(text), values))


def template_values() -> dict[str, str]:
    return Template.load().values(local_values())


def function_role(function_logical_id: str, overrides: dict[str, str] | None = None) -> Identity:
    """The role SAM creates for a function (`<Function>Role`), or the one its `Role` property names."""
    role = translated()["Resources"][function_logical_id]["Properties"].get("Role")
    logical_id = (
        role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else f"{function_logical_id}Role"
    )
    return _identities(tuple(sorted((overrides or {}).items())))[logical_id]


def by_arn(arn: str, overrides: dict[str, str] | None = None) -> Identity | None:
    return next((i for i in identities(overrides).values() if i.arn == arn), None)

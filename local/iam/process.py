"""The IAM check in a job process of the local executor: the job's own AWS requests (Evaluate downloading the
champion, say) are authorised against the role the job was given, as on AWS. local/boot/sitecustomize.py loads this
by path in container/.venv, where the `local` package does not exist: it imports only its siblings, relatively.

The executor writes the role to LOCAL_IAM_IDENTITY and reads back the denials from LOCAL_IAM_DENIALS, so a job that
swallowed a denial still fails the test that ran it (local.iam.enforce.record_denials).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import botocore.handlers

from .check import ACCOUNT, AccessDenied, Identity, authorise, hide_missing
from .requests import Where

IDENTITY_ENV = "LOCAL_IAM_IDENTITY"
DENIALS_ENV = "LOCAL_IAM_DENIALS"


def denial_line(denial: AccessDenied, service: str, operation: str) -> str:
    identity, request = denial.identity, denial.request
    fields = {"logical_id": identity.logical_id, "arn": identity.arn, "service": service, "operation": operation}
    fields |= {"action": request.action, "resource": request.resource, "decision": denial.decision.value}
    return json.dumps(fields)


def install_from_environment() -> bool:
    """Check every request of the process as the role LOCAL_IAM_IDENTITY names; False when it names none."""
    path = os.environ.get(IDENTITY_ENV)
    if not path:
        return False
    identity = Identity.from_json(json.loads(Path(path).read_text()))
    where = Where(ACCOUNT, os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    denials = Path(os.environ.get(DENIALS_ENV, os.devnull))

    def check(**kwargs: Any) -> None:
        model = kwargs["model"]
        service, operation = model.service_model.service_name, model.name

        def write(denial: AccessDenied) -> None:
            with denials.open("a", encoding="utf-8") as out:
                out.write(denial_line(denial, service, operation) + "\n")

        authorise(identity, service, operation, params=kwargs["params"], where=where, on_denial=write)

    def after(**kwargs: Any) -> None:
        hide_missing(identity, where, **kwargs)

    botocore.handlers.BUILTIN_HANDLERS.extend([("before-parameter-build", check), ("after-call", after)])
    return True

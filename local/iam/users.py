"""The people of the local stack: IAM users who call the REST API, each carrying duty policies of template.yaml (its
AWS::IAM::ManagedPolicy resources as CloudFormation receives them, resolved to the local stack's names), and each
picked by an access key id of its own. The keys are throwaway: the local API does not verify signatures."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from local.iam.check import Identity
from local.iam.policy import as_list
from local.iam.roles import translated
from local.template import ACCOUNT, local_values
from sam_stack.template import Template

DUTIES = ("RunOperatorPolicy", "ApproverPolicy", "DeployerPolicy", "ReaderPolicy")


@dataclass(frozen=True)
class LocalUser:
    name: str
    access_key: str
    policies: tuple[str, ...]  # logical ids of the template's managed policies attached to the user

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:user/{self.name}"


ADMIN = LocalUser("admin", "LOCALUSER", DUTIES)
RUNNER = LocalUser("runner", "LOCALRUNNER", ("RunOperatorPolicy",))
APPROVER = LocalUser("approver", "LOCALAPPROVER", ("ApproverPolicy",))
DEPLOYER = LocalUser("deployer", "LOCALDEPLOYER", ("DeployerPolicy",))
READER = LocalUser("reader", "LOCALREADER", ("ReaderPolicy",))
USERS = {user.access_key: user for user in (ADMIN, RUNNER, APPROVER, DEPLOYER, READER)}


def managed_policy_statements(logical_id: str, overrides: dict[str, str] | None = None) -> tuple[dict[str, Any], ...]:
    """The statements of the template's AWS::IAM::ManagedPolicy `logical_id`, as CloudFormation receives them,
    resolved to the local stack's values."""
    body = translated()
    resource = body["Resources"][logical_id]
    if resource["Type"] != "AWS::IAM::ManagedPolicy":
        raise KeyError(f"template.yaml: {logical_id} is a {resource['Type']}, not an AWS::IAM::ManagedPolicy")
    document = Template(body).resolve(resource["Properties"]["PolicyDocument"], local_values(overrides))
    return tuple(s for s in as_list(document.get("Statement", [])) if isinstance(s, dict))


@cache
def by_access_key(access_key: str) -> Identity | None:
    """The local user the access key id belongs to, with the statements of its policies; None for an unknown key."""
    user = USERS.get(access_key)
    if user is None:
        return None
    statements = tuple(s for policy in user.policies for s in managed_policy_statements(policy))
    return Identity(user.name, user.arn, statements)

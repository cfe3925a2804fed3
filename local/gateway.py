"""What API Gateway decides before a function runs: AWS_IAM authorisation of a request, and the answer it gives
itself when it refuses one (the template's gateway responses).

A signed request is authorised as API Gateway does it: the caller's identity policies must allow
`execute-api:Invoke` on `arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<path>`, the
request's own path (AWS's "Control access for invoking an API"). The caller is the local user whose access key
signed it (local/iam/users.py); the signature itself is not verified (the keys are throwaway).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from local.iam import users
from local.iam.check import Identity
from local.iam.policy import Decision, Request, evaluate
from local.template import local_values
from sam_stack.template import Template

LOG = logging.getLogger("local.gateway")
SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)/")
INVOKE = "execute-api:Invoke"


@dataclass(frozen=True)
class Stage:
    """The template's REST API as the local stack deploys it: its id, its stage, and its methods' ARNs."""

    api_id: str
    name: str
    arn_prefix: str  # arn:<partition>:execute-api:<region>:<account>:<api id>/<stage>

    @classmethod
    def of(cls, template: Template) -> Stage:
        values = template.values(local_values())
        name = str(template.resolve(template.resource("RestApi")["Properties"]["StageName"], values))
        api_id = values["RestApi"]
        region, account = values["AWS::Region"], values["AWS::AccountId"]
        return cls(api_id, name, f"arn:{values['AWS::Partition']}:execute-api:{region}:{account}:{api_id}/{name}")

    def method_arn(self, method: str, path: str) -> str:
        return f"{self.arn_prefix}/{method}/{path.lstrip('/')}"


@dataclass(frozen=True)
class Refusal:
    """A request API Gateway answers itself: the gateway response type and its message."""

    response_type: str
    message: str
    # the body's key when the template does not customise the response: an IAM denial's is "Message"
    default_key: str = "message"


MISSING_TOKEN = Refusal("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
INVALID_TOKEN = Refusal("ACCESS_DENIED", "The security token included in the request is invalid.")
# API Gateway's own status and x-amzn-ErrorType header of each response type the local API gives
_DEFAULTS = {
    "ACCESS_DENIED": (403, "AccessDeniedException"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException"),
}


def authorise(stage: Stage, method: str, path: str, *, authorization: str) -> Identity | Refusal:
    """The signing identity if its policies allow invoking the request's method and path, else API Gateway's
    refusal: unsigned, an unknown access key, or denied (an explicit deny says so)."""
    signed = SIGV4.match(authorization)
    if signed is None:
        return MISSING_TOKEN
    caller = users.by_access_key(signed.group(1))
    if caller is None:
        LOG.info("unknown access key", extra={"access_key": signed.group(1)})
        return INVALID_TOKEN
    resource = stage.method_arn(method, path)
    decision, _ = evaluate(caller.statements, Request(INVOKE, resource))
    if decision is Decision.ALLOW:
        return caller
    LOG.info("request denied", extra={"caller": caller.arn, "resource": resource, "decision": decision.value})
    explicit = " with an explicit deny" if decision is Decision.EXPLICIT_DENY else ""
    message = f"User: {caller.arn} is not authorized to perform: {INVOKE} on resource: {resource}{explicit}"
    return Refusal("ACCESS_DENIED", message, default_key="Message")


def gateway_response(template: Template, refusal: Refusal) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's answer: the template's gateway response of the type, else its DEFAULT_4XX (templates take simple
    variable substitution, no VTL), else API Gateway's own body."""
    status, error_type = _DEFAULTS[refusal.response_type]
    responses = template.resource("RestApi")["Properties"].get("GatewayResponses", {})
    custom = responses.get(refusal.response_type) or responses.get("DEFAULT_4XX") or {}
    body = custom.get("ResponseTemplates", {}).get("application/json")
    if body is None:
        text = json.dumps({refusal.default_key: refusal.message})
    else:
        text = (
            body.replace("$context.error.messageString", json.dumps(refusal.message))
            .replace("$context.error.message", refusal.message)
            .replace("$context.error.responseType", refusal.response_type)
        )
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
    return int(custom.get("StatusCode", status)), headers, text.encode()

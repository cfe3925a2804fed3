"""The API's OpenAPI document as clients need it: every IAM route declares the AWS SigV4 security scheme (in the
form API Gateway itself exports, the `x-amazon-apigateway-authtype: awsSigv4` apiKey scheme), and the Slack route,
which another function serves and Slack signs, is described with no security scheme."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme

from control_plane.rest import ERROR_MEANINGS

TITLE = "Scratch detector control plane"
VERSION = "1"
SIGV4 = "sigv4"
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    SIGV4: APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 for service execute-api: sign each request with the caller's AWS "
        "credentials (botocore's SigV4Auth); the caller's policies must allow execute-api:Invoke on the route",
        openapi_extensions={"x-amazon-apigateway-authtype": "awsSigv4"},
    )
}
# what each IAM route declares (API Gateway's export puts it on every operation)
SIGNED: list[dict[str, list[str]]] = [{SIGV4: []}]

# the API's one error shape, which the document's other operations already name
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
SLACK_ACTIONS: dict[str, Any] = {
    "summary": "Slack interactivity: a press of an Approve or Reject button",
    "description": "Called by Slack, not by clients: no AWS signature (API Gateway lets it through unauthorised); "
    "the function verifies Slack's signature (X-Slack-Signature over the timestamp and body, with the Slack app's "
    "signing secret), refuses a request older than five minutes and a user not on the approvers' allow-list.",
    "operationId": "slack_action_slack_actions_post",
    "security": [],
    "parameters": [
        {"name": "X-Slack-Signature", "in": "header", "required": True, "schema": {"type": "string"}},
        {"name": "X-Slack-Request-Timestamp", "in": "header", "required": True, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "required": ["payload"], "properties": {"payload": {"type": "string"}}}
            }
        },
    },
    "responses": {
        "200": {"description": "the click is queued for the decision worker"},
        **{str(code): {"description": ERROR_MEANINGS[code], "content": ERROR_CONTENT} for code in (400, 401, 403)},
    },
}


def document(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The OpenAPI document of `app`'s routes and of the Slack route, as JSON."""
    schema = app.get_openapi_schema(title=TITLE, version=VERSION, security_schemes=SECURITY_SCHEMES)
    served = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    served["paths"]["/slack/actions"] = {"post": SLACK_ACTIONS}
    return served

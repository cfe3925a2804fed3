"""What a fresh account or region lacks before the stack can be deployed, and the one-time set-up that adds it.

API Gateway writes a stage's execution logs (the template's MethodSettings LoggingLevel) only through the
account-level CloudWatch Logs role of the region (API Gateway's "account settings"); without it, creating the
stage fails with "CloudWatch Logs role ARN must be set in account settings to enable logging". That role is not
the stack's to own: one per account and region, shared by every API there.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from rollout.environments import RolloutError

ROLE_NAME = "apigateway-cloudwatch-logs"
# what AWS's managed policy AmazonAPIGatewayPushToCloudWatchLogs allows, inline so that it is visible here
PUSH_TO_LOGS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:GetLogEvents",
                "logs:FilterLogEvents",
            ],
            "Resource": "*",
        }
    ],
}
SETUP_COMMAND = "make account-setup"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def logs_role(apigateway: Any) -> str | None:
    """The region's API Gateway CloudWatch Logs role, or None."""
    role = apigateway.get_account().get("cloudwatchRoleArn")
    return str(role) if role else None


def check(apigateway: Any, region: str) -> None:
    """Refuse, before anything changes, an account and region the stack cannot be created in."""
    if logs_role(apigateway) is None:
        raise RolloutError(
            f"API Gateway in {region} has no CloudWatch Logs role (account settings), so the API's stage cannot "
            f"be created. Run once for this account and region: {SETUP_COMMAND}"
        )


def setup(iam: Any, apigateway: Any, wait_seconds: float = 60) -> str:
    """Create the role (or reuse it) and make it the region's API Gateway logs role. Returns what it did."""
    existing = logs_role(apigateway)
    if existing is not None:
        return f"nothing to do: API Gateway already logs through {existing}"
    try:
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(TRUST),
            Description="API Gateway writes execution logs to CloudWatch Logs with this role (account settings)",
        )["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName="push-to-cloudwatch-logs", PolicyDocument=json.dumps(PUSH_TO_LOGS)
    )
    # a new role takes a few seconds to reach API Gateway, which refuses it until then
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}])
            return f"API Gateway now logs through {arn}"
        except ClientError as error:
            if error.response["Error"]["Code"] != "BadRequestException" or time.monotonic() > deadline:
                raise
            time.sleep(3)

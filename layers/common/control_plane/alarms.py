"""A CloudWatch alarm's state change, as the alarm topic delivers it (the JSON CloudWatch publishes to SNS), posted
to the approvers' channel: one place for people."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from control_plane import slack_messages
from control_plane.notifications import Posted
from control_plane.ports import PosterPort

# the console's host in each partition (an alarm's ARN names its partition and region)
CONSOLES = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


class AlarmChange(BaseModel):
    """The fields of CloudWatch's alarm notification that a person needs; the rest (Trigger, actions) is ignored."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    name: str = Field(alias="AlarmName", min_length=1)
    arn: str = Field(alias="AlarmArn", pattern=r"^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:.+$")
    description: str | None = Field(default=None, alias="AlarmDescription")
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] = Field(alias="NewStateValue")
    previous: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] = Field(alias="OldStateValue")
    reason: str = Field(alias="NewStateReason")
    at: datetime = Field(alias="StateChangeTime")

    @property
    def console_url(self) -> str:
        partition, region = self.arn.split(":")[1], self.arn.split(":")[3]
        host = CONSOLES.get(partition, CONSOLES["aws"])
        return f"https://{region}.{host}/cloudwatch/home?region={region}#alarmsV2:alarm/{quote(self.name, safe='')}"


def of_message(message: str) -> AlarmChange:
    """The alarm change an SNS message's text holds; a pydantic ValidationError names the field that is not one."""
    return AlarmChange.model_validate_json(message)


def post(change: AlarmChange, poster: PosterPort, channel: str) -> Posted:
    text, blocks = slack_messages.alarm_changed(
        name=change.name,
        state=change.state,
        previous=change.previous,
        reason=change.reason,
        description=change.description,
        url=change.console_url,
    )
    return Posted(kind="alarm", arn=change.arn, ts=poster.post(channel, text, blocks))

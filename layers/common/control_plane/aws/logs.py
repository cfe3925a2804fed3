"""CloudWatch Logs: a training job's epoch lines, which SageMaker's DescribeTrainingJob does not carry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from control_plane.aws.clients import client
from control_plane.observability import logger
from control_plane.progress import EPOCH_PATTERN, LOG_GROUP

# FilterLogEvents answers oldest first, up to 10,000 events or 1 MB a page: a job's epoch lines fit in a few
PAGES = 5


def epoch_events(job_name: str, since: datetime) -> list[dict[str, Any]]:
    """The epoch lines of training job `job_name` logged since `since` (at most PAGES pages); none when the logs
    cannot be read (a run's detail never fails for want of its progress)."""
    request: dict[str, Any] = {
        "logGroupName": LOG_GROUP,
        "logStreamNamePrefix": f"{job_name}/",
        "filterPattern": EPOCH_PATTERN,
        "startTime": int(since.timestamp() * 1000),
    }
    events: list[dict[str, Any]] = []
    try:
        for _ in range(PAGES):
            page = client("logs").filter_log_events(**request)
            events += page.get("events", [])
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except (ClientError, BotoCoreError) as error:
        logger.warning("no training log to read", extra={"job": job_name, "error": str(error)})
        return []
    # the job's own streams only (<job>/algo-<n>-<seconds>), whatever the prefix matched
    return [e for e in events if str(e.get("logStreamName", "")).startswith(f"{job_name}/")]

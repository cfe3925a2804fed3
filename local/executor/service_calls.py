"""What SageMaker itself does with a pipeline's roles, authorised as AWS authorises it: the pipeline's role creates,
watches and stops the steps' jobs; a job's role pulls its image from ECR, writes its logs and (training) its metrics.
The local executor makes none of these calls to an AWS service, so it asks the IAM check (local/iam) directly, and a
role that lacks one fails the step as SageMaker fails it."""

from __future__ import annotations

import re
from typing import Any

from local.iam import enforce
from local.iam.check import Identity

# <account>.dkr.ecr.<region>.amazonaws.com/<repository>[:tag|@digest]
_IMAGE = re.compile(r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[^:@]+)")
LOG_GROUPS = {"training": "/aws/sagemaker/TrainingJobs", "processing": "/aws/sagemaker/ProcessingJobs"}
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def _image(request: dict[str, Any]) -> str:
    specification = request.get("AlgorithmSpecification") or request.get("AppSpecification") or {}
    return str(specification.get("TrainingImage") or specification.get("ImageUri") or "")


def job_calls(kind: str, name: str, request: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The calls SageMaker makes with a job's role before and while it runs."""
    calls: list[tuple[str, str, dict[str, Any]]] = [("ecr", "GetAuthorizationToken", {})]
    match = _IMAGE.match(_image(request))
    if match:
        repository = {"repositoryName": match["repository"]}
        calls += [("ecr", op, repository) for op in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer")]
        calls.append(("ecr", "BatchGetImage", repository))
    group = LOG_GROUPS[kind]
    stream = {"logGroupName": group, "logStreamName": f"{name}/algo-1"}
    calls += [
        ("logs", "CreateLogGroup", {"logGroupName": group}),
        ("logs", "DescribeLogStreams", {"logGroupName": group}),
        ("logs", "CreateLogStream", stream),
        ("logs", "PutLogEvents", stream),
    ]
    if kind == "training" and request.get("AlgorithmSpecification", {}).get("MetricDefinitions"):
        calls.append(("cloudwatch", "PutMetricData", {"Namespace": METRICS_NAMESPACE}))
    return calls


def refused(identity: Identity | None, calls: list[tuple[str, str, dict[str, Any]]]) -> str | None:
    """The first call `identity` may not make, as SageMaker reports it; None when it may make them all (or no role
    of the template acts: its policy is unknown here)."""
    if identity is None:
        return None
    for service, operation, params in calls:
        try:
            enforce.authorise(identity, service, operation, params=params)
        except enforce.AccessDenied as denial:
            return f"ClientError: {denial}"
    return None


def watch_calls(kind: str, name: str, stopping: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """The pipeline role's calls on a job it started: SageMaker describes it until it ends, and stops it on a stop."""
    member = "TrainingJobName" if kind == "training" else "ProcessingJobName"
    label = "Training" if kind == "training" else "Processing"
    calls = [("sagemaker", f"Describe{label}Job", {member: name})]
    if stopping:
        calls.append(("sagemaker", f"Stop{label}Job", {member: name}))
    return calls

"""The training image's repository: does the image a config names exist, as an image SageMaker can run?"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from control_plane.aws.clients import LazyClient
from pipeline_def.config import manifest_problem

_URI = re.compile(
    r"(?P<registry>[0-9]{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(?P<repository>[^:@]+)"
    r"(:(?P<tag>[^@]+)|@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class ImageRegistry:
    _ecr = LazyClient("ecr")

    def __init__(self, ecr: Any = None) -> None:
        self._client = ecr

    def missing(self, uri: str) -> str | None:
        """None when the image exists, else why the pipeline must not point at it."""
        match = _URI.match(uri)
        if match is None:
            return f"{uri} is not an ECR image URI"
        image = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"] or "latest"}
        try:
            described = self._ecr.describe_images(
                registryId=match["registry"], repositoryName=match["repository"], imageIds=[image]
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ImageNotFoundException":
                return f"no image {uri} in ECR: push it first (make image)"
            if code == "RepositoryNotFoundException":
                return f"ECR repository {match['repository']} does not exist"
            if code in {"AccessDeniedException", "AccessDenied"}:
                return f"{uri} is outside this stack's ECR repository, the only one SageMaker may pull from"
            raise
        # an image SageMaker cannot pull (a list or an index) would fail every run at its first job
        [details] = described["imageDetails"]
        return manifest_problem(uri, details.get("imageManifestMediaType", ""))

"""The training image: built from container/, tagged with the git commit, pushed to the stack's repository.

Tags are immutable in the repository, so a tag names one set of bytes: an image already there is never rebuilt,
and a container/ folder with uncommitted changes is refused (its image would not be the commit's).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline_def.config import manifest_problem
from rollout.environments import ROOT, RolloutError

CONTEXT = ROOT / "container"
# SageMaker runs x86_64 instances and pulls one image manifest: build for that platform whatever the builder's
# machine is (an Apple silicon laptop builds arm64 by default), and without BuildKit's provenance and SBOM
# attestations, which turn the pushed image into an index that SageMaker refuses
BUILD_OPTIONS = ("--platform", "linux/amd64", "--provenance=false", "--sbom=false")


VARIANTS = ("cpu", "gpu")


def variant_tag(commit: str, variant: str) -> str:
    """The commit for the CPU image, `<commit>-gpu` for the GPU one: tags are immutable, and they are two images."""
    if variant not in VARIANTS:
        raise RolloutError(f"image variant {variant!r} is not one of {', '.join(VARIANTS)}")
    return commit if variant == "cpu" else f"{commit}-{variant}"


def commit_tag(root: Path = ROOT) -> str:
    """The current commit, shortened: the image's tag. Refused while container/ differs from that commit."""
    dirty = _git(root, "status", "--porcelain", "--", "container")
    if dirty:
        raise RolloutError(
            f"container/ has uncommitted changes; commit them first, the image tag names the commit:\n{dirty}"
        )
    return _git(root, "rev-parse", "--short=12", "HEAD")


def exists(ecr: Any, repository_uri: str, tag: str) -> bool:
    registry, repository = repository_uri.split("/", 1)
    try:
        ecr.describe_images(
            registryId=registry.split(".", 1)[0], repositoryName=repository, imageIds=[{"imageTag": tag}]
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ImageNotFoundException":
            return False
        raise
    return True


def push(ecr: Any, repository_uri: str, *, tag: str, variant: str = "cpu") -> str:
    """Build the `variant` image and push it as `repository_uri:tag` unless it is there already; returns its URI
    once its manifest is one SageMaker can pull (a tag found in ECR is checked too: tags are immutable, so an image
    refused once stays there and a rerun must refuse it again)."""
    uri = f"{repository_uri}:{tag}"
    if exists(ecr, repository_uri, tag):
        print(f"image {uri} is already in ECR; not rebuilt")
    else:
        _login(ecr, repository_uri)
        _docker("build", *BUILD_OPTIONS, "--build-arg", f"VARIANT={variant}", "--tag", uri, str(CONTEXT))
        _docker("push", uri)
    check_manifest(ecr, repository_uri, tag)
    return uri


def check_manifest(ecr: Any, repository_uri: str, tag: str) -> None:
    """Refuse a pushed image that SageMaker cannot pull: a manifest list or an index, not one image manifest."""
    registry, repository = repository_uri.split("/", 1)
    [described] = ecr.describe_images(
        registryId=registry.split(".", 1)[0], repositoryName=repository, imageIds=[{"imageTag": tag}]
    )["imageDetails"]
    problem = manifest_problem(f"{repository_uri}:{tag}", described.get("imageManifestMediaType", ""))
    if problem:
        raise RolloutError(f"{problem}; build it with {' '.join(BUILD_OPTIONS)}")


def copy(ecr: Any, source_uri: str, *, repository_uri: str, tag: str) -> str:
    """Promotion: the image that ran in one environment, byte for byte, into another's repository; checked as
    `push` checks it."""
    uri = f"{repository_uri}:{tag}"
    if exists(ecr, repository_uri, tag):
        print(f"image {uri} is already in ECR")
    else:
        _login(ecr, source_uri)
        _login(ecr, repository_uri)
        _docker("pull", source_uri)
        _docker("tag", source_uri, uri)
        _docker("push", uri)
    check_manifest(ecr, repository_uri, tag)
    return uri


def _login(ecr: Any, repository_uri: str) -> None:
    registry = repository_uri.split("/", 1)[0]
    [auth] = ecr.get_authorization_token(registryIds=[registry.split(".", 1)[0]])["authorizationData"]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    _docker("login", "--username", user, "--password-stdin", registry, stdin=password)


def _docker(*args: str, stdin: str | None = None) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise RolloutError("docker is not on PATH: building and pushing the training image needs Docker")
    subprocess.run([docker, *args], input=stdin, text=True, check=True)  # noqa: S603 (fixed program, our args)


def _git(root: Path, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise RolloutError("git is not on PATH: the image tag is the git commit")
    done = subprocess.run([git, *args], cwd=root, capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout.strip()

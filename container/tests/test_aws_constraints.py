"""A job process of the local stack checks its AWS requests as the services do (local/boot/sitecustomize.py)."""

from __future__ import annotations

import subprocess
import sys

from sam_stack.container import container_environment

REQUEST = """
import boto3
client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="y", endpoint_url="http://127.0.0.1:9")
try:
    client.put_record(FeatureGroupName="scratch labels", Record=[{"FeatureName": "source_ref", "ValueAsString": "a"}])
except Exception as error:
    print(type(error).__name__, error)
"""


def test_a_job_process_refuses_what_aws_refuses() -> None:
    # When a process started as the executor starts jobs sends a feature group name that breaks its pattern
    done = subprocess.run(
        [sys.executable, "-c", REQUEST], env=container_environment(), capture_output=True, text=True, timeout=60
    )
    # Then it fails before it reaches the network, as the service would answer
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConstraintViolation "), done.stdout
    assert "PutRecord operation" in done.stdout
    assert "'FeatureGroupName'" in done.stdout

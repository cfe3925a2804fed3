"""How every part of the offline stack reaches the emulated AWS: moto on loopback and the environment boto3 reads.

Tests, benchmarks and the local stack share these, so no code path of the product knows it is local:
boto3 finds the endpoint in `AWS_ENDPOINT_URL` and takes throwaway credentials.
"""

from __future__ import annotations

import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

REGION = "us-east-1"


def start_moto() -> tuple[ThreadedMotoServer, str]:
    """A moto server on 127.0.0.1 at a free port, in a background thread; returns it and its endpoint URL."""
    # imported here: moto is slow to import, and what only needs REGION should not pay for it
    from moto.server import ThreadedMotoServer

    from local import moto_extras

    moto_extras.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def reset_moto(endpoint: str) -> None:
    """Forget every resource: moto's state belongs to the process, whichever server answers."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 (loopback)
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def aws_environment(endpoint: str) -> dict[str, str]:
    """Variables that point boto3 at `endpoint` with throwaway credentials, no profile and no metadata service."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

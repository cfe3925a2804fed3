"""How many requests moto has served that may have changed what the local stack saves (local/snapshot.py), so that
the saver copies the emulated services only after something changed, and costs nothing while the stack is idle.

A request changes nothing when it goes to a service whose state is not saved (SQS, EventBridge, STS, ...) or when
it only reads: S3's GET and HEAD, and the JSON services' Get/Describe/List/Scan/Query operations. Anything else, an
unsigned or presigned request included, counts as a change.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

SAVED = frozenset({"s3", "ssm", "secretsmanager", "dynamodb", "sagemaker"})
READS = ("Get", "Describe", "List", "Scan", "Query", "BatchGet", "Search")
# SigV4's credential scope: <key>/<date>/<region>/<service>/aws4_request
_SCOPE = re.compile(r"Credential=[^/]+/[0-9]+/[^/]+/([^/]+)/aws4_request")

_lock = threading.Lock()
_count = 0
_serve = DomainDispatcherApplication.__call__


def count() -> int:
    with _lock:
        return _count


def changes_state(environ: dict[str, Any]) -> bool:
    scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        return True
    if scope.group(1) not in SAVED:
        return False
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return not str(target).rsplit(".", 1)[-1].startswith(READS)
    return environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}


def _counting(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
    global _count
    served = _serve(self, environ, start_response)
    # counted once served: a save that reads the count first then sees the change, or saves again after it
    if changes_state(environ):
        with _lock:
            _count += 1
    return served


def install() -> None:
    """Idempotent: every moto server of the process counts."""
    DomainDispatcherApplication.__call__ = _counting  # type: ignore[method-assign]

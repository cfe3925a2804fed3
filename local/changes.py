"""Which requests moto has served that may have changed what the local stack saves (local/snapshot.py), so that
the saver copies the emulated services only after something changed, and the buckets' objects only where something
changed: it costs nothing while the stack is idle, and a bucket of thousands of images is not listed again because
a job wrote its log.

A request changes nothing when it goes to a service whose state is not saved (SQS, EventBridge, STS, ...) or when
it only reads: S3's GET and HEAD, and the JSON services' Get/Describe/List/Scan/Query operations. Anything else, an
unsigned or presigned request included, counts as a change. An S3 change names its object when the request's path
does (`/<bucket>/<key>`, as boto3 addresses a loopback endpoint), else its whole bucket, else every bucket.
"""

from __future__ import annotations

import re
import threading
from typing import Any

SAVED = frozenset({"s3", "ssm", "secretsmanager", "dynamodb", "sagemaker"})
READS = ("Get", "Describe", "List", "Scan", "Query", "BatchGet", "Search")
# SigV4's credential scope: <key>/<date>/<region>/<service>/aws4_request (a header, or a presigned URL's query)
_SCOPE = re.compile(r"Credential=[^/]+/[0-9]+/[^/]+/([^/]+)/aws4_request")
_LOOPBACK = re.compile(r"^(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$")

# bucket -> the keys changed since the saver last took them; None: the whole bucket
Objects = dict[str, set[str] | None]

_lock = threading.Lock()
_count = 0
_objects: Objects = {}
_everywhere = False
_serve: Any = None  # moto's own dispatch, wrapped by install()


def count() -> int:
    with _lock:
        return _count


def take_objects() -> Objects | None:
    """The objects changed since the last take, and forgets them; None when a change could be anywhere."""
    global _objects, _everywhere
    with _lock:
        taken, everywhere = _objects, _everywhere
        _objects, _everywhere = {}, False
    return None if everywhere else taken


def give_back(objects: Objects | None) -> None:
    """Changes a failed save took: the next save copies them."""
    global _everywhere
    with _lock:
        if objects is None:
            _everywhere = True
            return
        for bucket, keys in objects.items():
            _note(bucket, keys)


def changes_state(environ: dict[str, Any]) -> bool:
    service = _service(environ)
    if service is None:
        return True
    if service not in SAVED:
        return False
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return not str(target).rsplit(".", 1)[-1].startswith(READS)
    return environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}


def _service(environ: dict[str, Any]) -> str | None:
    signed = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or _SCOPE.search(
        environ.get("QUERY_STRING", "").replace("%2F", "/").replace("%2f", "/")
    )
    return signed.group(1) if signed else None


def _place(environ: dict[str, Any]) -> tuple[str, str | None] | None:
    """The bucket and key a path-style S3 request names (the key None for a bucket-wide request); None when the
    request does not say (virtual-host addressing)."""
    if not _LOOPBACK.match(str(environ.get("HTTP_HOST", ""))):
        return None
    # WSGI gives the path's bytes decoded as Latin-1
    path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", errors="replace")
    bucket, _, key = path.lstrip("/").partition("/")
    return (bucket, key or None) if bucket else None


def _note(bucket: str, keys: set[str] | None) -> None:
    known = _objects.get(bucket, set())
    _objects[bucket] = None if keys is None or known is None else known | keys


def record(environ: dict[str, Any]) -> None:
    """Count a served request that may have changed saved state, and note the objects it may have changed."""
    global _count, _everywhere
    if not changes_state(environ):
        return
    s3 = _service(environ) in {"s3", None}
    place = _place(environ) if s3 else None
    with _lock:
        _count += 1
        if place is not None:
            _note(place[0], None if place[1] is None else {place[1]})
        elif s3:
            _everywhere = True


def _counting(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
    served = _serve(self, environ, start_response)
    # counted once served: a save that reads the count first then sees the change, or saves again after it
    record(environ)
    return served


def install() -> None:
    """Idempotent: every moto server of the process counts. moto is imported here: it is slow to import, and what
    reads the counts need not pay for it."""
    global _serve
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if DomainDispatcherApplication.__call__ is not _counting:
        _serve = DomainDispatcherApplication.__call__
        DomainDispatcherApplication.__call__ = _counting  # type: ignore[method-assign]

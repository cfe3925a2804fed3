"""Typed domain errors. `control_plane.rest` maps each to one HTTP status, in one place."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """An error the caller can fix or must know about; `code` is stable, `message` is for people."""

    code = "Error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ControlPlaneError):
    code = "InvalidRequest"
    status = 400


class Unauthorized(ControlPlaneError):
    code = "Unauthorized"
    status = 401


class Forbidden(ControlPlaneError):
    code = "Forbidden"
    status = 403


class NotFound(ControlPlaneError):
    code = "NotFound"
    status = 404


class Conflict(ControlPlaneError):
    code = "Conflict"
    status = 409


class TooManyRequests(ControlPlaneError):
    """AWS throttled the request, or an account quota is used up: try again later, or raise the quota."""

    code = "TooManyRequests"
    status = 429


class UploadFailed(ControlPlaneError):
    """Slack refused or lost a file upload: the message goes without the file, saying why."""

    code = "UploadFailed"
    status = 502

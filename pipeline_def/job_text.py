"""How a value travels to a job as text (SageMaker's hyperparameter map and container arguments are strings).

No imports, so the image's tools (bench-quality, in container/.venv) use it too.
"""

from __future__ import annotations

from typing import Any


def job_text(value: Any) -> str:
    """true/false for a flag, comma-separated for a list, the shortest exact text (repr) for a float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(job_text(part) for part in value)
    if isinstance(value, float):
        return repr(value)  # the same on every platform
    return str(value)

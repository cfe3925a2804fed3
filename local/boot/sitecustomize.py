"""Loaded at start-up by every job process of the local stack (this folder leads its PYTHONPATH): the processes
of container/.venv validate their AWS requests as the services do (local/constraints.py), like the rest of the stack.

constraints.py is loaded by path: the container's environment has no `local` package to import it from.
"""

import importlib.util
import sys
from pathlib import Path

_SOURCE = Path(__file__).resolve().parent.parent / "constraints.py"

try:
    _spec = importlib.util.spec_from_file_location("local_constraints", _SOURCE)
    if _spec is None or _spec.loader is None:
        raise ImportError(f"no module at {_SOURCE}")
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _module
    _spec.loader.exec_module(_module)
    _module.install()
except Exception as error:  # site prints and ignores an Exception here; a job must not run without the checks
    sys.stderr.write(f"local/boot/sitecustomize.py: cannot install AWS's request constraints: {error!r}\n")
    raise SystemExit(3) from error

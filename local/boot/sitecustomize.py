"""Loaded at start-up by every job process of the local stack (this folder leads its PYTHONPATH): the processes
of container/.venv validate their AWS requests as the services do (local/constraints.py) and, when the executor
names the job's role (LOCAL_IAM_IDENTITY), authorise them against it (local/iam/process.py), like the rest of the stack;
when the executor names the job's hosts (LOCAL_HOST_NAMES), `algo-1`, `algo-2`, ... resolve in them from the time it
chose, as SageMaker's names do once the cluster has booted (local/executor/host_names.py).

All are loaded by path: the container's environment has no `local` package to import them from.
"""

import importlib.util
import sys
from pathlib import Path

_LOCAL = Path(__file__).resolve().parent.parent


def _load(name: str, source: Path, package: bool = False) -> object:
    locations = [str(source.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module at {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


try:
    _load("local_constraints", _LOCAL / "constraints.py").install()  # type: ignore[attr-defined]
    # local/iam as a package of another name, for its relative imports (policy, requests, check, usage)
    _load("local_iam", _LOCAL / "iam" / "__init__.py", package=True)
    _load("local_iam.process", _LOCAL / "iam" / "process.py").install_from_environment()  # type: ignore[attr-defined]
    _load("local_host_names", _LOCAL / "executor" / "host_names.py").install_from_environment()  # type: ignore[attr-defined]
except Exception as error:  # site prints and ignores an Exception here; a job must not run without the checks
    sys.stderr.write(f"local/boot/sitecustomize.py: cannot install AWS's request checks or host names: {error!r}\n")
    raise SystemExit(3) from error

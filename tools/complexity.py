"""`make lint`'s gate on readable functions: ruff's McCabe rule (C901), statement count (PLR0915) and positional
parameters (PLR0917), with the limits in pyproject.toml's [tool.ruff.lint.*], over all Python in the repository.

The functions over a limit today are listed once, in pyproject.toml's [tool.complexity] `exceptions`
("path::function"). The gate fails on an offender not in the list, and on a listed function that is no longer an
offender (take it off: the list only shrinks).

    python tools/complexity.py [PATH ...]   exit 0 clean, 1 with the offenders named
    python tools/complexity.py --shrink     take the functions now within the limits off the list (never adds)
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = "C901,PLR0915,PLR0917"


def offenders(paths: list[str], *, ruff: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """{"path::function": [ruff's messages]} for every function over a limit."""
    done = subprocess.run(  # noqa: S603 (our own ruff, our own arguments)
        [str(ruff), "check", "--select", RULES, "--output-format", "json", "--exit-zero", *paths],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, list[str]] = {}
    for hit in json.loads(done.stdout):
        path = Path(hit["filename"])
        where = f"{path.relative_to(root).as_posix()}::{_function_at(path, hit['location']['row'])}"
        found.setdefault(where, []).append(f"{hit['code']} {hit['message']}")
    return found


def _function_at(path: Path, row: int) -> str:
    """The qualified name of the function defined at `row` (where ruff reports these rules)."""

    def walk(node: ast.AST, prefix: str) -> str | None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if child.lineno == row and not isinstance(child, ast.ClassDef):
                    return name
                inner = walk(child, f"{name}.")
                if inner:
                    return inner
        return None

    return walk(ast.parse(path.read_text(encoding="utf-8")), "") or f"line {row}"


def exceptions(pyproject: Path = ROOT / "pyproject.toml") -> set[str]:
    listed: list[str] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["complexity"]["exceptions"]
    return set(listed)


def verdict(found: dict[str, list[str]], allowed: set[str]) -> list[str]:
    """One line per problem: a new offender, or a listed function that no longer is one."""
    new = [f"{where}: {'; '.join(found[where])}" for where in sorted(set(found) - allowed)]
    gone = [
        f"{where}: within the limits now, take it off [tool.complexity] exceptions" for where in allowed - set(found)
    ]
    return new + sorted(gone)


def shrink(found: dict[str, list[str]], pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Removes the listed functions that are within the limits now from pyproject.toml; returns them."""
    fixed = sorted(exceptions(pyproject) - set(found))
    lines = pyproject.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip().rstrip(",").strip('"') not in fixed]
    pyproject.write_text("".join(kept), encoding="utf-8")
    return fixed


def main(argv: list[str]) -> int:
    ruff = Path(sys.executable).with_name("ruff")
    if argv == ["--shrink"]:
        for where in shrink(offenders(["."], ruff=ruff)):
            print(f"off the list: {where}")
        return 0
    problems = verdict(offenders(argv or ["."], ruff=ruff), exceptions() if not argv else set())
    for line in problems:
        print(line)
    if problems:
        print(
            f"{len(problems)} function(s) over the limits (pyproject.toml [tool.ruff.lint.mccabe] and "
            "[tool.ruff.lint.pylint]): split them into named parts, make long signatures keyword-only (`*,`)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

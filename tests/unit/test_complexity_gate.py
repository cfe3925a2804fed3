"""make lint's gate on readable functions (tools/complexity.py) fails on a new offender and on a stale exception."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tools import complexity

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")

BRANCHY = (
    "def branchy(x: int) -> int:\n"
    + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(11))
    + ("    return -1\n")
)
LONG_SIGNATURE = "def many(a: int, b: int, c: int, d: int) -> int:\n    return a + b + c + d\n"
PLAIN = "def plain(a: int, *, b: int, c: int, d: int) -> int:\n    return a + b + c + d\n"


def _project(tmp_path: Path, source: str) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")  # the repository's limits
    (tmp_path / "module.py").write_text(source, encoding="utf-8")
    return tmp_path


def test_a_new_function_over_a_limit_fails_the_gate_by_name(tmp_path: Path) -> None:
    root = _project(tmp_path, BRANCHY + "\n\n" + LONG_SIGNATURE + "\n\n" + PLAIN)
    problems = complexity.verdict(complexity.offenders(["."], ruff=RUFF, root=root), allowed=set())
    assert [line.split(": ")[0] for line in problems] == ["module.py::branchy", "module.py::many"]
    assert "C901 `branchy` is too complex (12 > 10)" in problems[0]
    assert "PLR0917 Too many positional arguments (4 > 3)" in problems[1]


def test_a_listed_function_passes_and_a_fixed_one_must_leave_the_list(tmp_path: Path) -> None:
    root = _project(tmp_path, BRANCHY + "\n\n" + PLAIN)
    found = complexity.offenders(["."], ruff=RUFF, root=root)
    assert complexity.verdict(found, allowed={"module.py::branchy"}) == []
    assert complexity.verdict(found, allowed={"module.py::branchy", "module.py::plain"}) == [
        "module.py::plain: within the limits now, take it off [tool.complexity] exceptions"
    ]


def test_todays_repository_passes_its_own_gate() -> None:
    assert complexity.verdict(complexity.offenders(["."], ruff=RUFF), complexity.exceptions()) == []


def test_shrink_takes_only_the_fixed_functions_off_the_list(tmp_path: Path) -> None:
    root = _project(tmp_path, BRANCHY + "\n\n" + PLAIN)
    pyproject = root / "pyproject.toml"
    listed = '[tool.complexity]\nexceptions = [\n    "module.py::branchy",\n    "module.py::plain",\n]\n'
    text = pyproject.read_text(encoding="utf-8")
    start = text.index("[tool.complexity]")
    pyproject.write_text(text[:start] + listed + text[text.index("\n[", start + 1) :], encoding="utf-8")

    removed = complexity.shrink(complexity.offenders(["."], ruff=RUFF, root=root), pyproject)

    assert removed == ["module.py::plain"]
    assert complexity.exceptions(pyproject) == {"module.py::branchy"}

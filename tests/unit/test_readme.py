"""The README's examples cannot rot: every fence names its language, every shell example parses, names no
placeholder and no path outside the repository, and every `make` target, Python module and `scratch-detector`
command and option it uses exists. (tests/e2e/test_readme_examples.py runs the ones that need no AWS account.)"""

from __future__ import annotations

import re
import subprocess

import pytest
from typer.testing import CliRunner

from scratch_cli.main import app
from tests.conftest import REPO
from tests.readme import LANGUAGES, Block, blocks

BLOCKS = blocks(REPO / "README.md")
SHELL = [block for block in BLOCKS if block.info.split()[:1] == ["sh"]]
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")


def _ids(found: list[Block]) -> list[str]:
    return [f"line{block.line}" for block in found]


def _targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z0-9-]+):", text, flags=re.MULTILINE))


def test_every_fence_names_its_language() -> None:
    untagged = [block.where for block in BLOCKS if block.info not in LANGUAGES]
    assert not untagged, f"fences need one of {sorted(LANGUAGES)}: {untagged}"
    assert len(SHELL) >= 10  # the README's examples are found at all


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_a_shell_example_parses(block: Block) -> None:
    checked = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"{block.where}: {checked.stderr}"


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_a_shell_example_needs_nothing_filled_in_and_nothing_outside_the_repository(block: Block) -> None:
    words = [word for command in block.commands() for word in command]
    assert not [w for w in words if PLACEHOLDER.search(w)], f"{block.where}: a <placeholder> (set a variable instead)"
    assert not [w for w in words if "../" in w], f"{block.where}: a path outside the repository"


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_every_make_target_and_python_module_of_an_example_exists(block: Block) -> None:
    targets = _targets()
    for words in block.commands():
        if "=" in words[0] or words[0] == "export":
            continue  # an assignment: its $(...) is checked as a command of its own
        if words[0] == "make":
            named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            assert named, f"{block.where}: make without a target"
            assert set(named) <= targets, f"{block.where}: no such make target {set(named) - targets}"
        if words[0].endswith("python") and words[1:2] == ["-m"]:
            root = REPO / "container" if words[0].startswith("container/") else REPO
            module = root / words[2].replace(".", "/")
            assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), (
                f"{block.where}: no module {words[2]} under {root.name}"
            )


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_every_command_line_call_of_an_example_parses(block: Block) -> None:
    runner = CliRunner()
    for words in block.commands():
        if not words[0].endswith("scratch-detector"):
            continue
        done = runner.invoke(app, [*words[1:], "--help"])
        assert done.exit_code == 0, f"{block.where}: {' '.join(words)}: {done.output}"


def test_the_checks_refuse_what_they_exist_to_refuse() -> None:
    broken = Block(1, "sh", "make no-such-target\nscratch-detector runs begin\nrun --x <thing> ../shared/y\n")
    with pytest.raises(AssertionError, match="no such make target"):
        test_every_make_target_and_python_module_of_an_example_exists(broken)
    with pytest.raises(AssertionError, match="runs begin"):
        test_every_command_line_call_of_an_example_parses(broken)
    with pytest.raises(AssertionError, match="placeholder"):
        test_a_shell_example_needs_nothing_filled_in_and_nothing_outside_the_repository(broken)
    with pytest.raises(AssertionError):
        test_a_shell_example_parses(Block(1, "sh", "if then\n"))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.info == "python"], ids=lambda b: f"line{b.line}")
def test_a_python_example_compiles(block: Block) -> None:
    compile(block.text, block.where, "exec")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_within_the_readme_names_a_heading() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    headings = {_anchor(h) for h in re.findall(r"^#{1,4} (.+)$", text, flags=re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "the contents link to the sections"
    assert links <= headings, f"links to no heading: {sorted(links - headings)}"
    assert _anchor("Speed (`make bench-*`, each one)") == "speed-make-bench--each-one"

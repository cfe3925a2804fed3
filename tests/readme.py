"""The README's fenced blocks, as the README tests read them.

Every fence names its language. A shell example is `sh` and runs as written in a checkout, without an AWS account
(the e2e test runs it against the local stack); `sh aws` needs an AWS account and `sh slow` takes minutes (`make run`,
`make test`): both are only checked here (they parse, and every command and option they name exists). A block's last
line may end with `# exits N` when N is the status it ends with. `text` is output or a diagram, `python` is code.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = {"sh", "sh aws", "sh slow", "text", "python"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^`]*)$")
EXITS = re.compile(r"#\s*exits (\d+)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, counted from 1
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"README.md line {self.line} ({self.info or 'no language'})"

    def expected_exit(self) -> int:
        found = EXITS.search(self.text.rstrip().splitlines()[-1])
        return int(found.group(1)) if found else 0

    def commands(self) -> list[list[str]]:
        """Each logical line's words (continuations joined, comments dropped), split at `;`, `&&`, `||` and `|`;
        a `$(...)` substitution's own command counts as one too."""
        joined = self.text.replace("\\\n", " ")
        commands: list[list[str]] = []
        for line in joined.splitlines():
            for inner in re.findall(r"\$\(([^()]*)\)", line):
                commands += _split(inner)
            commands += _split(line)
        return [words for words in commands if words]


def _split(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in {";", "&&", "||", "|", "&"}:
            commands.append([])
        else:
            commands[-1].append(word)
    return commands


def blocks(readme: Path) -> list[Block]:
    found: list[Block] = []
    lines = readme.read_text(encoding="utf-8").splitlines()
    opening: tuple[int, str, str] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line)
        if fence is None:
            if opening is not None:
                body.append(line[len(opening[2]) :] if line.startswith(opening[2]) else line)
            continue
        if opening is None:
            opening, body = (number, fence.group("info").strip(), fence.group("indent")), []
        else:
            found.append(Block(opening[0], opening[1], "\n".join(body) + "\n"))
            opening = None
    if opening is not None:
        raise ValueError(f"README.md line {opening[0]}: a fence that is never closed")
    return found

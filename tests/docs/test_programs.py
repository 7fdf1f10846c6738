"""
Every program of the docs (the routine examples and the cookbook's recipes, the ``.py`` files
under docs/ with a ``__main__`` part) runs as ``python FILE`` and prints exactly the output its
page shows, in a ``text`` block after a ``<!-- output of PATH -->`` line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MAIN = 'if __name__ == "__main__":'
_OUTPUT = re.compile(r"<!-- output of (?P<path>\S+) -->\n```text\n(?P<text>.*?)```", re.DOTALL)
_INCLUDE = re.compile(r"```\{literalinclude\} (?P<path>\S+\.py)\n")


def programs() -> list[Path]:
    return sorted(
        path
        for path in DOCS.rglob("*.py")
        if "_build" not in path.parts and MAIN in path.read_text(encoding="utf-8")
    )


def shown_outputs() -> dict[Path, str]:
    # program -> the output a page shows for it (paths are relative to the page).
    found: dict[Path, str] = {}
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for match in _OUTPUT.finditer(page.read_text(encoding="utf-8")):
            found[(page.parent / match.group("path")).resolve()] = match.group("text")
    return found


def included() -> set[Path]:
    # The programs a page shows with literalinclude.
    return {
        (page.parent / match.group("path")).resolve()
        for page in DOCS.rglob("*.md")
        if "_build" not in page.parts
        for match in _INCLUDE.finditer(page.read_text(encoding="utf-8"))
    }


def test_every_program_is_shown_with_its_output() -> None:
    """A program under docs/ is included in a page and its output shown there."""
    found = {p.resolve() for p in programs()}
    assert len(found) >= 13 + 6, "the routine examples and the cookbook are found"
    assert set() == found - included(), "programs no page shows"
    assert set() == found - set(shown_outputs()), "programs whose output no page shows"


@pytest.mark.parametrize("program", programs(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_program_prints_what_its_page_shows(program: Path, tmp_path: Path) -> None:
    """The program runs in a fresh interpreter, warnings as errors, and prints its page's
    output."""
    env = {k: v for k, v in os.environ.items() if k != "ROUTILUX_STORE"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env=env,
    )
    assert 0 == proc.returncode, proc.stderr
    assert shown_outputs()[program.resolve()] == proc.stdout

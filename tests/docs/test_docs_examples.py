"""
Every ```python block of docs/**/*.md runs: each page's blocks in order, in one namespace, in
a temporary working directory.

docs/plugins.md has its own tests, and the programs under docs/ (routine examples, cookbook)
run in test_programs.py. A block preceded by a line
``<!-- no-test -->`` is skipped (only for snippets that cannot run, such as shell sessions).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIP = {DOCS / "plugins.md"}
SKIP_DIRS = {DOCS / "_build"}
NO_TEST = "<!-- no-test -->"
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """
    Return ``(line number, code)`` for each ```python block of a markdown file.
    """
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, lang, indent = i, match.group("lang"), len(match.group("indent"))
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        previous = lines[start - 1].strip() if start else ""
        if lang == "python" and previous != NO_TEST:
            blocks.append((start + 1, "\n".join(body) + "\n"))
    return blocks


def pages() -> list[Path]:
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        if path in SKIP or any(d in path.parents for d in SKIP_DIRS):
            continue
        if python_blocks(path):
            found.append(path)
    return found


class TestFinder:
    def test_finds_blocks_and_honours_no_test(self, tmp_path: Path) -> None:
        """python blocks are found in order; other languages and no-test blocks are not."""
        page = tmp_path / "p.md"
        page.write_text(
            "x\n```python\na = 1\n```\n```console\n$ ls\n```\n<!-- no-test -->\n"
            "```python\nboom(\n```\n- item\n  ```python\n  b = a + 1\n  ```\n",
            encoding="utf-8",
        )
        assert [(2, "a = 1\n"), (13, "b = a + 1\n")] == python_blocks(page)

    def test_docs_have_examples(self) -> None:
        """The guides this suite is meant to cover are found."""
        names = {p.relative_to(DOCS).as_posix() for p in pages()}
        assert {"getting-started.md", "howto/error-strategies.md", "job-stores.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page's python blocks run in order in one namespace."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROUTILUX_STORE", raising=False)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}", "ROOT": str(ROOT)}
    for line, code in python_blocks(page):
        compiled = compile(code, f"{page}:{line}", "exec")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                exec(compiled, namespace)
            except Exception as exc:
                pytest.fail(f"{page.relative_to(ROOT)} block at line {line} failed: {exc!r}")

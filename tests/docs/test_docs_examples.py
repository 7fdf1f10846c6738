"""
Every ```python block of docs/**/*.md runs: each page's blocks in order, in one namespace, in
a temporary working directory.

docs/plugins.md has its own tests, and the programs under docs/ (routine examples, cookbook)
run in test_programs.py. A block preceded by a line
``<!-- no-test -->`` is skipped (only for snippets that cannot run, such as installing).

A ```console block preceded by ``<!-- session -->`` is a shell session that runs too: each
page's sessions in order, in one temporary folder (where ``examples/`` is the repository's),
with this interpreter's ``routilux`` first on PATH. Every ``$ `` command (continued by a
trailing backslash) prints exactly the lines shown after it, where ``...`` in a line stands
for any text (what changes from run to run, such as times).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SKIP = {DOCS / "plugins.md"}
SKIP_DIRS = {DOCS / "_build"}
NO_TEST = "<!-- no-test -->"
SESSION = "<!-- session -->"
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^`\s]*)(\s.*)?$")


def fenced_blocks(path: Path, lang: str, marker: str | None) -> list[tuple[int, str]]:
    """
    Return ``(line number, code)`` for each ```LANG block of a markdown file: the blocks after
    a line ``marker`` if it is given, else those not after ``<!-- no-test -->``.
    """
    blocks: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start, found, indent = i, match.group("lang"), len(match.group("indent"))
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        previous = lines[start - 1].strip() if start else ""
        wanted = previous == marker if marker is not None else previous != NO_TEST
        if found == lang and wanted:
            blocks.append((start + 1, "\n".join(body) + "\n"))
    return blocks


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """
    Return ``(line number, code)`` for each ```python block of a markdown file that runs.
    """
    return fenced_blocks(path, "python", None)


def session_steps(path: Path) -> list[tuple[int, str, list[str]]]:
    """
    Return ``(line number, command, expected lines)`` for each command of the page's shell
    sessions (```console blocks after ``<!-- session -->``).
    """
    steps: list[tuple[int, str, list[str]]] = []
    for first, block in fenced_blocks(path, "console", SESSION):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                raise ValueError(f"{path}:{first + i + 1}: output before any command")
            line, command = first + i + 1, lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            expected: list[str] = []
            while i < len(lines) and not lines[i].startswith("$ "):
                expected.append(lines[i])
                i += 1
            steps.append((line, command, expected))
    return steps


def line_matches(expected: str, actual: str) -> bool:
    """
    Whether a printed line is the line a page shows, where ``...`` stands for any text.
    """
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def markdown_pages() -> list[Path]:
    return [
        path
        for path in sorted(DOCS.rglob("*.md"))
        if path not in SKIP and not any(d in path.parents for d in SKIP_DIRS)
    ]


def pages() -> list[Path]:
    return [path for path in markdown_pages() if python_blocks(path)]


def session_pages() -> list[Path]:
    return [path for path in markdown_pages() if session_steps(path)]


class TestFinder:
    def test_finds_blocks_and_honours_no_test(self, tmp_path: Path) -> None:
        """python blocks are found in order; other languages, directives and no-test blocks
        are not."""
        page = tmp_path / "p.md"
        page.write_text(
            "x\n```python\na = 1\n```\n```console\n$ ls\n```\n<!-- no-test -->\n"
            "```python\nboom(\n```\n- item\n  ```python\n  b = a + 1\n  ```\n"
            "```{flow} f.py:build\n```\n```python\nc = b\n```\n",
            encoding="utf-8",
        )
        assert [(2, "a = 1\n"), (13, "b = a + 1\n"), (18, "c = b\n")] == python_blocks(page)

    def test_finds_session_steps(self, tmp_path: Path) -> None:
        """Commands of session blocks, continued lines joined, with the lines after each;
        console blocks without the marker are not sessions."""
        page = tmp_path / "p.md"
        page.write_text(
            "```console\n$ skipped\n```\n<!-- session -->\n```console\n"
            "$ echo a \\\n    b\na b\n$ true\n```\n",
            encoding="utf-8",
        )
        assert [(6, "echo a  b", ["a b"]), (9, "true", [])] == session_steps(page)

    def test_dots_stand_for_any_text(self) -> None:
        """``...`` matches any text, the rest of the line matches exactly."""
        assert line_matches("at ... done", "at 20:01:02 done")
        assert line_matches("{...}", "{}")
        assert not line_matches("at ... done", "at 20:01:02 done!")
        assert not line_matches("a.c", "abc")

    def test_docs_have_examples(self) -> None:
        """The guides this suite is meant to cover are found."""
        names = {p.relative_to(DOCS).as_posix() for p in pages()}
        assert {"getting-started.md", "howto/error-strategies.md", "job-stores.md"} <= names
        sessions = {p.relative_to(DOCS).as_posix() for p in session_pages()}
        assert "getting-started.md" in sessions


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


@pytest.mark.parametrize("page", session_pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_sessions_print_what_they_show(page: Path, tmp_path: Path) -> None:
    """Each command of a page's sessions exits as the page implies and prints its lines."""
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "ROUTILUX_STORE"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for line, command, expected in session_steps(page):
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        printed = (proc.stdout + proc.stderr).splitlines()
        where = f"{page.relative_to(ROOT)}:{line} $ {command}"
        assert len(expected) == len(printed), f"{where}\n" + "\n".join(printed)
        for want, got in zip(expected, printed, strict=True):
            assert line_matches(want, got), f"{where}\nshown:   {want}\nprinted: {got}"

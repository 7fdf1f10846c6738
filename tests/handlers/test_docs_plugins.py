"""
The python examples of docs/plugins.md run, in order, and print what the page says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest


PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.S | re.M)


def test_page_has_examples() -> None:
    """The page keeps its runnable examples."""
    assert len(blocks()) >= 3


def test_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """All blocks run in one namespace; a trailing "# <value>" on a print is its output."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_plugins"}
    for index, code in enumerate(blocks()):
        exec(compile(code, f"docs/plugins.md[{index}]", "exec"), namespace)
        printed = capsys.readouterr().out.splitlines()
        expected = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+#\s*(.+)", code)]
        assert expected == printed, f"block {index}"

"""
The README's python examples run and print what the README says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest


README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    """The README keeps its quick start."""
    assert _blocks()


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_example(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    """Each block runs; lines with a trailing "# <value>" comment print that value."""
    code = _blocks()[index]
    namespace: dict[str, Any] = {"__name__": f"readme_{index}"}
    exec(compile(code, f"README.md[{index}]", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    expected = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+#\s*(.+)", code)]
    assert expected == printed

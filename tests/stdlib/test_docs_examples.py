"""
Every ```python block of docs/routines/*.md runs (in a fresh interpreter) and prints something.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import routilux_stdlib


DOCS = Path(__file__).resolve().parents[2] / "docs" / "routines"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PAGES = sorted(DOCS.glob("*.md"))


def test_one_page_per_routine() -> None:
    """
    Each built-in has its page.
    """
    assert set(routilux_stdlib.ROUTINES) == {p.stem for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_examples_run(page: Path) -> None:
    """
    The page's python blocks run without error and print what they show.
    """
    text = page.read_text(encoding="utf-8")
    for section in ("## Slots", "## Events", "## Config", "## Example"):
        assert section in text
    blocks = BLOCK.findall(text)
    assert blocks, f"{page.name} has no python example"
    for code in blocks:
        proc = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 == proc.returncode, proc.stderr
        assert proc.stdout.strip(), f"{page.name}: the example prints nothing"

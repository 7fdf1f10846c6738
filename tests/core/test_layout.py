"""
The layout of the packages (ARCHITECTURE, "One layered house"): small modules whose names
say what they hold.
"""

from __future__ import annotations

from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500


def test_no_module_is_over_500_lines() -> None:
    """Every module of every package's sources has at most 500 lines."""
    modules = sorted(ROOT.glob("packages/*/src/**/*.py"))
    assert len(modules) > 50, "the package sources were not found"
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not long, f"modules over {LIMIT} lines (split them by what they hold): {long}"

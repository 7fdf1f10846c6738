"""
The reference pages of the built-in routines, and the pictures of every page.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ROUTINES = DOCS / "routines"
FAMILIES = ("control-flow", "data", "text", "collection", "human-input", "time")


def stdlib_routines() -> list[str]:
    return sorted(
        ep.name
        for ep in entry_points(group="routilux.routines")
        if ep.dist is not None and "routilux-stdlib" == ep.dist.name
    )


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def test_stdlib_routines_are_found() -> None:
    """The entry points of routilux-stdlib are read (the page test below is not empty)."""
    assert {"Filter", "HumanInput", "Aggregator"} <= set(stdlib_routines())


@pytest.mark.parametrize("name", stdlib_routines())
def test_every_registered_routine_has_its_page(name: str) -> None:
    """Each routine of routilux-stdlib has a page with its tables drawn from its class, an
    example program and the picture of the example's flow, listed under one family."""
    text = (ROUTINES / f"{name}.md").read_text(encoding="utf-8")
    for directive in ("routine-slots", "routine-events", "routine-config"):
        assert f"```{{{directive}}} {name}\n" in text
    assert re.search(r"```\{literalinclude\} examples/\w+\.py\n", text)
    assert re.search(r"```\{flow\} examples/\w+\.py:build_flow\n", text)
    families = [
        family
        for family in FAMILIES
        if re.search(rf"^{name}$", (ROUTINES / f"{family}.md").read_text(encoding="utf-8"), re.M)
    ]
    assert 1 == len(families), f"{name} is listed under {families}"


_FENCE = re.compile(r"^\s*(```+|~~~+)\s*\{?(?P<lang>[\w-]*)\}?", re.MULTILINE)
_PICTURE_TEXT = re.compile(r"^\s*(digraph\b|graph\s+\w*\s*\{|flowchart\s+(LR|TD|TB|RL|BT)\b)", re.M)


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_no_picture_is_left_as_text(page: Path) -> None:
    """No page shows a Mermaid or DOT picture as source text (or inline DOT): every picture
    is drawn from its flow by the {flow} directive."""
    text = page.read_text(encoding="utf-8")
    langs = {m.group("lang") for m in _FENCE.finditer(text)}
    assert set() == langs & {"mermaid", "dot", "graphviz", "digraph"}
    assert _PICTURE_TEXT.search(text) is None

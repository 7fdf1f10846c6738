"""
The reference pages of the built-in routines, and the pictures of every page.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from routilux.lifecycle import ENGINE_ACTIONS, TRANSITIONS, Action


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
_BOX_DRAWING = re.compile("[\u2500-\u257f\u25b2\u25b6\u25bc\u25c0]")  # ─ │ ┌ ▶ ◀ ▲ ▼


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_no_picture_is_left_as_text(page: Path) -> None:
    """No page shows a Mermaid or DOT picture as source text (or inline DOT), nor a picture
    drawn with box-drawing characters: every picture is drawn from the code by a directive
    ({flow}, {lifecycle})."""
    text = page.read_text(encoding="utf-8")
    langs = {m.group("lang") for m in _FENCE.finditer(text)}
    assert set() == langs & {"mermaid", "dot", "graphviz", "digraph"}
    assert _PICTURE_TEXT.search(text) is None
    assert _BOX_DRAWING.findall(text) == []


def test_lifecycle_picture_is_the_transition_table() -> None:
    """The {lifecycle} picture has an arrow for each status change of TRANSITIONS and no
    other: from the status's box to the new status's, labelled with the action, dashed
    exactly for the engine's own steps."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from routilux_docs import lifecycle_dot
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    arrow = re.compile(
        r'^\s*"(?P<src>[^"]+)" -> "(?P<dst>[^"]+)" '
        r'\[label="(?P<acts>[^"]+)"(?P<dash>, style=dashed)?\];$'
    )
    drawn = set()
    for match in filter(None, map(arrow.match, lifecycle_dot().splitlines())):
        for action in match.group("acts").split(", "):
            for status in match.group("src").split(" / "):
                drawn.add((status, Action(action), match.group("dst"), bool(match.group("dash"))))
    changes = {
        (status, action, target, action in ENGINE_ACTIONS)
        for (status, action), target in TRANSITIONS.items()
        if target is not None and target != status
    }
    assert len(changes) > 10
    assert changes == drawn

"""
Adapter: a stored flow as Graphviz DOT, each routine a box classed by its state.

The same picture as ``routilux graph --format dot`` (drawn by a private function of core's
command), plus an SVG class per routine (``routine st-<state>``) that the page's style sheet
colours; a public ``routilux.graph.render_dot(flow_data, node_attrs=None)`` taking extra
node attributes is to replace this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


__all__ = ["flow_dot"]


def _quote(text: str) -> str:
    # A DOT double-quoted string: backslashes (Graphviz escapes such as \N) and quotes are
    # escaped, line breaks become spaces.
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\r", " ").replace("\n", " ")


def flow_dot(flow_data: Mapping[str, Any], states: Mapping[str, str]) -> str:
    """
    Return the DOT text of a serialized flow; ``states`` maps routine ids to a state name
    (``idle``, ``running``, ``completed``, ``failed``, ``waiting``), written as the box's
    class and as its third label line.
    """
    routines = flow_data.get("routines")
    routines = routines if isinstance(routines, dict) else {}
    connections = flow_data.get("connections")
    connections = connections if isinstance(connections, list) else []
    flow_id = str(flow_data.get("flow_id", "flow"))
    lines = [
        f'digraph "{_quote(flow_id)}" {{',
        "    rankdir=LR;",
        '    bgcolor="transparent";',
        '    node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica", '
        'fontsize=12, margin="0.2,0.1"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for rid, spec in routines.items():
        kind = spec.get("type", "?") if isinstance(spec, dict) else "?"
        state = states.get(rid, "idle")
        lines.append(
            f'    "{_quote(rid)}" [label="{_quote(rid)}\\n{_quote(str(kind))}\\n{state}", '
            f'class="routine st-{state}", tooltip="{_quote(rid)}: {state}"];'
        )
    for conn in connections:
        if not isinstance(conn, dict):
            continue
        label = f"{conn.get('source_event')} → {conn.get('target_slot')}"
        lines.append(
            f'    "{_quote(str(conn.get("source_routine_id")))}" -> '
            f'"{_quote(str(conn.get("target_routine_id")))}" [label="{_quote(label)}"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"

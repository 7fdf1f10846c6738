"""
A flow as a picture's text: Graphviz DOT and Mermaid, each routine coloured by its state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, Union

import attrs

from routilux.exceptions import ConfigurationError
from routilux.model._definition import FlowDefinition
from routilux.model._job_state import JobState
from routilux.model._routine import Routine
from routilux.names._routines import routine_type_name


__all__ = [
    "STATE_STYLES",
    "FlowLike",
    "StateStyle",
    "render_dot",
    "render_mermaid",
    "routine_states",
]

FlowLike = Union[FlowDefinition, Mapping[str, Any]]
"""
What the renderers draw: a flow (a :class:`~routilux.Flow`), or its document (the data of
``Flow.serialize()``, of a flow file, or of ``JobStore.load_flow``).
"""


@attrs.frozen
class StateStyle:
    """
    How a routine in one state is drawn: the same colours on the web page of routilux-ui,
    in ``routilux graph --job`` and in :func:`render_dot`.
    """

    #: What the legend says of the state.
    legend: str
    #: The box's outline, ``#rrggbb``.
    stroke: str
    #: The box's fill, ``#rrggbb``.
    fill: str
    #: The outline's width, in points.
    penwidth: float


STATE_STYLES: Mapping[str, StateStyle] = MappingProxyType(
    {
        "idle": StateStyle("not run", "#8c959f", "#eef1f4", 1.0),
        "running": StateStyle("running", "#0969da", "#dbeafe", 2.5),
        "completed": StateStyle("completed", "#1a7f37", "#c7f0d2", 2.0),
        "failed": StateStyle("failed", "#cf222e", "#ffd7d5", 2.5),
        "waiting": StateStyle("waiting for a person", "#b45309", "#fde68a", 2.5),
    }
)
"""A routine's state in a picture -> how it is drawn, in the order legends list them."""

_DRAWN_STATUSES = frozenset({"running", "completed", "failed"})
_PLAIN = StateStyle("", "#57606a", "#ffffff", 1.0)
"""A routine of a picture drawn without states."""


@attrs.frozen
class _Edge:
    source: str
    event: str
    slot: str
    target: str


@attrs.frozen
class _Picture:
    flow_id: str
    #: Routine id -> its type name.
    nodes: dict[str, str]
    edges: list[_Edge]


def _kind(routine: Routine) -> str:
    # The registered type name, else the class name (a routine class defined in a script).
    cls = type(routine)
    return routine_type_name(cls) or cls.__qualname__


def _picture(flow: FlowLike) -> _Picture:
    if isinstance(flow, FlowDefinition):
        return _Picture(
            flow.flow_id,
            {rid: _kind(routine) for rid, routine in flow.routines.items()},
            [
                _Edge(
                    str(conn.source_routine_id),
                    conn.source_event.name if conn.source_event is not None else "?",
                    conn.target_slot.name if conn.target_slot is not None else "?",
                    str(conn.target_routine_id),
                )
                for conn in flow.connections
            ],
        )
    routines = flow.get("routines")
    connections = flow.get("connections")
    return _Picture(
        str(flow.get("flow_id", "flow")),
        {
            str(rid): str(spec.get("type", "?")) if isinstance(spec, Mapping) else "?"
            for rid, spec in (routines.items() if isinstance(routines, Mapping) else ())
        },
        [
            _Edge(
                str(conn.get("source_routine_id")),
                str(conn.get("source_event")),
                str(conn.get("target_slot")),
                str(conn.get("target_routine_id")),
            )
            for conn in (connections if isinstance(connections, list) else ())
            if isinstance(conn, Mapping)
        ],
    )


def routine_states(
    flow: FlowLike, job_state: JobState | Mapping[str, Any], waiting: Collection[str] = ()
) -> dict[str, str]:
    """
    Return the state of each routine of ``flow`` in a job, a key of :data:`STATE_STYLES`:
    ``waiting`` for the routines in ``waiting`` (those whose question to a person is open),
    else ``running``, ``completed`` or ``failed`` as the job's routine state says, else
    ``idle`` (not run).

    Args:
        flow: The job's flow, or its document.
        job_state: The job's state, or its document (what a job store keeps).
        waiting: The ids of the routines waiting for a person.
    """
    if isinstance(job_state, JobState):
        stored: Any = job_state.routine_states
    else:
        stored = job_state.get("routine_states")
    if not isinstance(stored, Mapping):
        stored = {}
    out: dict[str, str] = {}
    for rid in _picture(flow).nodes:
        entry = stored.get(rid)
        status = entry.get("status") if isinstance(entry, Mapping) else None
        if rid in waiting:
            out[rid] = "waiting"
        elif status in _DRAWN_STATUSES:
            out[rid] = str(status)
        else:
            out[rid] = "idle"
    return out


def _q(text: str) -> str:
    # A DOT double-quoted string: backslashes (Graphviz escapes such as \N) and quotes are
    # escaped, line breaks become spaces.
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return text.replace("\r", " ").replace("\n", " ")


def _state_of(rid: str, states: Mapping[str, str]) -> str:
    state = states.get(rid, "idle")
    if state not in STATE_STYLES:
        msg = f"routine {rid!r} has the state {state!r}; the states are {sorted(STATE_STYLES)}"
        raise ConfigurationError(msg, name="states", value=state)
    return state


def render_dot(flow: FlowLike, states: Mapping[str, str] | None = None) -> str:
    """
    Return the Graphviz DOT text of ``flow``: one box per routine (its id and type name), one
    arrow per connection (labelled ``event → slot``), left to right.

    With ``states`` (routine id -> a key of :data:`STATE_STYLES`, for example from
    :func:`routine_states`; a routine it leaves out is ``idle``) each box is coloured by its
    state, says it on a third line, and carries the SVG class ``routine st-<state>``.

    Raises:
        ConfigurationError: A state that is not a key of :data:`STATE_STYLES` (a
            ``ValueError``).
    """
    picture = _picture(flow)
    lines = [
        f'digraph "{_q(picture.flow_id)}" {{',
        "    rankdir=LR;",
        '    bgcolor="transparent";',
        '    node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, '
        'margin="0.2,0.1"];',
        '    edge [fontname="Helvetica", fontsize=10, color="#57606a"];',
    ]
    for rid, kind in picture.nodes.items():
        label = f"{_q(rid)}\\n{_q(kind)}"
        if states is None:
            style, extra = _PLAIN, ""
        else:
            state = _state_of(rid, states)
            style = STATE_STYLES[state]
            label += f"\\n{state}"
            extra = f', class="routine st-{state}", tooltip="{_q(rid)}: {style.legend}"'
        lines.append(
            f'    "{_q(rid)}" [label="{label}", color="{style.stroke}", '
            f'fillcolor="{style.fill}", penwidth={style.penwidth:g}{extra}];'
        )
    for edge in picture.edges:
        lines.append(
            f'    "{_q(edge.source)}" -> "{_q(edge.target)}" '
            f'[label="{_q(f"{edge.event} → {edge.slot}")}"];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _m(text: str) -> str:
    # Mermaid label text: quotes and angle brackets as entities, so a label cannot end early
    # or open markup.
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def render_mermaid(flow: FlowLike, states: Mapping[str, str] | None = None) -> str:
    """
    Return the Mermaid ``flowchart`` text of ``flow``: the picture of :func:`render_dot`, for
    pages that draw Mermaid (GitHub, GitLab). With ``states`` each box gets the class of its
    state, coloured as :data:`STATE_STYLES` says.

    Raises:
        ConfigurationError: A state that is not a key of :data:`STATE_STYLES` (a
            ``ValueError``).
    """
    picture = _picture(flow)
    ids = {rid: f"r{i}" for i, rid in enumerate(picture.nodes)}
    lines = ["flowchart LR"]
    for rid, kind in picture.nodes.items():
        node = f'    {ids[rid]}["{_m(rid)}<br/><small>{_m(kind)}</small>"]'
        if states is not None:
            node += f":::{_state_of(rid, states)}"
        lines.append(node)
    for edge in picture.edges:
        label = _m(f"{edge.event} → {edge.slot}")
        lines.append(
            f'    {ids.get(edge.source, "missing")} -- "{label}" --> '
            f"{ids.get(edge.target, 'missing')}"
        )
    if states is not None:
        for name, style in STATE_STYLES.items():
            lines.append(
                f"    classDef {name} fill:{style.fill},stroke:{style.stroke},"
                f"stroke-width:{style.penwidth:g}px"
            )
    return "\n".join(lines) + "\n"

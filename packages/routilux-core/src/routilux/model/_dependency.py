"""
Dependency graph utilities: which routines feed which, and which can run next.

These are helpers for code that reasons about a flow's structure; the execution engine does not
use them (a flow is driven by events, not by a topological order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from routilux.model._connection import Connection
    from routilux.model._routine import Routine

__all__ = ["build_dependency_graph", "get_ready_routines"]


def build_dependency_graph(
    routines: dict[str, Routine], connections: list[Connection]
) -> dict[str, set[str]]:
    """
    Map each routine id to the ids of the routines it depends on (its upstream sources).

    Every routine in ``routines`` has a key, with an empty set when nothing feeds it. A
    connection makes its target routine depend on its source routine; the two are the routines
    that own the connection's source event and target slot, found by identity among
    ``routines``. Connections from a routine to itself, and connections with an end that is
    missing or owned by a routine not in ``routines``, add nothing.

    Args:
        routines: The routines by id (``Flow.routines``).
        connections: The connections between them (``Flow.connections``).

    Returns:
        ``{routine id: set of the routine ids it depends on}``, in the order of ``routines``.
    """
    ids = {id(routine): routine_id for routine_id, routine in routines.items()}
    graph: dict[str, set[str]] = {routine_id: set() for routine_id in routines}
    for connection in connections:
        event, slot = connection.source_event, connection.target_slot
        source = ids.get(id(event.routine)) if event is not None else None
        target = ids.get(id(slot.routine)) if slot is not None else None
        if source is not None and target is not None and source != target:
            graph[target].add(source)
    return graph


def get_ready_routines(
    completed: set[str], graph: dict[str, set[str]], running: set[str]
) -> list[str]:
    """
    Return the routines that can start: all their dependencies are in ``completed``, and they
    are neither completed nor running.

    Args:
        completed: Ids of the routines that have finished.
        graph: A graph built by :func:`build_dependency_graph`.
        running: Ids of the routines that are running.

    Returns:
        The ready routine ids, in the order of ``graph``.
    """
    return [
        routine_id
        for routine_id, dependencies in graph.items()
        if routine_id not in completed and routine_id not in running and dependencies <= completed
    ]

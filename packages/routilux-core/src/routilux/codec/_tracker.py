"""
Execution trackers as documents (``routilux.execution_tracker``).

A tracker is written as its flow id, activation records by routine id, emitted events and
performance metrics.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from routilux.codec._converter import check_header, header, structure
from routilux.codec._history import dump_field
from routilux.codec._schemas import TrackerDoc
from routilux.codec._values import subpath
from routilux.model._tracker import ExecutionTracker


__all__ = ["dump_tracker", "load_tracker", "load_tracker_into"]

_FORMAT = "routilux.execution_tracker"


def dump_tracker(tracker: ExecutionTracker) -> dict[str, Any]:
    """
    Return an :class:`~routilux.ExecutionTracker` as a ``routilux.execution_tracker``
    document: its flow id, activation records by routine id, emitted events and
    performance metrics, as a JSON-able copy taken under the tracker's lock.

    Raises:
        SerializationError: A record holds data that is not JSON (a set, an object...);
            the message gives its path.
    """
    with tracker.lock:
        return {
            **header(_FORMAT),
            "flow_id": tracker.flow_id,
            "routine_executions": {
                rid: dump_field(list(records), subpath("routine_executions", rid))
                for rid, records in tracker.routine_executions.items()
            },
            "event_flow": dump_field(list(tracker.event_flow), "event_flow"),
            "performance_metrics": dump_field(
                dict(tracker.performance_metrics), "performance_metrics"
            ),
        }


def _fill(tracker: ExecutionTracker, data: Any) -> None:
    # Give ``tracker`` the records of a tracker document, bounded by its limit.
    check_header(data, _FORMAT, legacy_type="ExecutionTracker")
    doc = structure(data, TrackerDoc, "")
    limit = tracker.limit
    executions: dict[str, list[dict[str, Any]]] = {
        rid: (deque(records, maxlen=limit) if limit else list(records))  # type: ignore[misc]
        for rid, records in doc.routine_executions.items()
    }
    events: Any = deque(doc.event_flow, maxlen=limit) if limit else list(doc.event_flow)
    # The tracker's properties take its own lock.
    tracker.flow_id = doc.flow_id
    tracker.routine_executions = executions
    tracker.event_flow = events
    tracker.performance_metrics = dict(doc.performance_metrics)


def load_tracker(data: Any) -> ExecutionTracker:
    """
    Return a new :class:`~routilux.ExecutionTracker` (keeping every record) made from a
    :func:`dump_tracker` document, or the original library's
    ``{"_type": "ExecutionTracker", ...}``.

    Raises:
        DeserializationError: ``data`` is malformed.

    .. versionadded:: 0.10
    """
    tracker = ExecutionTracker()
    _fill(tracker, data)
    return tracker


def load_tracker_into(tracker: ExecutionTracker, data: Any) -> None:
    """
    Restore an :class:`~routilux.ExecutionTracker` from a :func:`dump_tracker` document
    (``routilux.execution_tracker``), or the original library's
    ``{"_type": "ExecutionTracker", ...}``; the tracker keeps its limit.

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    _fill(tracker, data)

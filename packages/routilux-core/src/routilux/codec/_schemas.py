"""
The document schemas: attrs classes the converter structures documents into.

Their fields are the keys a document part may have (flow files refuse any other key).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from routilux.codec._converter import JsonObject, JsonValue


__all__ = [
    "ConnectionDoc",
    "ErrorHandlerDoc",
    "EventDoc",
    "FlowDoc",
    "JobStateHead",
    "RoutineDoc",
    "SlotDoc",
    "TrackerDoc",
]

_OVERRIDE = JsonValue("override")


@attrs.frozen
class ErrorHandlerDoc:
    """
    An error handler: strategy, retry settings and retryable exception names.
    """

    strategy: str = "stop"
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: float = 2.0
    retry_count: int = 0
    is_critical: bool = False
    retryable_exceptions: list[str] = attrs.Factory(lambda: ["Exception"])


@attrs.frozen
class SlotDoc:
    """
    A slot a routine declares: name, merge strategy, handler and timeout (seconds, when
    it has its own).
    """

    name: str
    merge_strategy: JsonValue = _OVERRIDE
    handler: JsonObject | None = None
    timeout: float | None = None


@attrs.frozen
class EventDoc:
    """
    An event a routine declares: name and ``output_params``.
    """

    name: str
    output_params: list[str] = attrs.Factory(list)


@attrs.frozen
class RoutineDoc:
    """
    A routine: registered type name, id, config, error handler, slots and events.
    """

    type: str
    id: str | None = None
    config: JsonObject = attrs.Factory(lambda: JsonObject({}))
    error_handler: ErrorHandlerDoc | None = None
    slots: list[SlotDoc] = attrs.Factory(list)
    events: list[EventDoc] = attrs.Factory(list)


@attrs.frozen
class ConnectionDoc:
    """
    A connection, by routine ids, event and slot names, with its parameter mapping.
    """

    source_routine_id: str
    source_event: str
    target_routine_id: str
    target_slot: str
    param_mapping: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class FlowDoc:
    """
    A flow's definition: settings, routines by flow routine id, connections.
    """

    flow_id: str
    routines: dict[str, RoutineDoc]
    execution_strategy: str = "sequential"
    max_workers: int = 5
    max_async: int = 32
    history_limit: int | None = None
    error_handler: ErrorHandlerDoc | None = None
    connections: list[ConnectionDoc] = attrs.Factory(list)


@attrs.frozen
class JobStateHead:
    """
    The small fields of a job document (its big lists are read by hand, for speed).
    """

    flow_id: str
    job_id: str
    status: str
    current_routine_id: str | None = None
    metadata: JsonObject = attrs.Factory(lambda: JsonObject({}))
    checkpoint: JsonObject | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    history_limit: int | None = None
    history_dropped: int = 0
    output_handler_failures: int = 0
    checkpoint_seq: int = 0


@attrs.frozen
class TrackerDoc:
    """
    An execution tracker: flow id, activation records by routine id, emitted events and
    performance metrics.
    """

    flow_id: str = ""
    routine_executions: dict[str, list[JsonObject]] = attrs.Factory(dict)
    event_flow: list[JsonObject] = attrs.Factory(list)
    performance_metrics: JsonObject = attrs.Factory(lambda: JsonObject({}))

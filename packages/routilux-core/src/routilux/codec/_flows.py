"""
Flows as documents (``routilux.flow``): settings, routines and connections.

A flow is written as its settings, its routines by flow routine id and the connections
between them; never any job state.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from routilux.codec._connections import connection_doc
from routilux.codec._converter import check_header, header, structure
from routilux.codec._error_handlers import build_error_handler, error_handler_doc
from routilux.codec._routines import apply_routine_doc, new_routine, routine_doc
from routilux.codec._schemas import FlowDoc
from routilux.codec._values import show, subpath
from routilux.exceptions import DeserializationError
from routilux.model._definition import EXECUTION_STRATEGIES, FlowDefinition
from routilux.model._error_handler import ErrorHandler
from routilux.model._routine import Routine


__all__ = ["FLOW_FORMAT", "dump_flow", "load_flow", "load_flow_into"]

FLOW_FORMAT = "routilux.flow"
"""Format name of a serialized :class:`~routilux.Flow`."""

_MAX_WORKERS = 10_000

_FD = TypeVar("_FD", bound=FlowDefinition)


def dump_flow(flow: FlowDefinition) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Flow`'s definition as a ``routilux.flow`` document.

    Raises:
        SerializationError: A routine class is not registered, or a handler, merge
            strategy, config value or exception class has no name; the message and
            ``path`` say where (for example ``routines.r1.config.routes[0]``).
    """
    eh = flow.error_handler
    routines = {
        rid: routine_doc(routine, subpath("routines", rid), with_id=False)
        for rid, routine in flow.routines.items()
    }
    return {
        **header(FLOW_FORMAT),
        "flow_id": flow.flow_id,
        "execution_strategy": flow.execution_strategy,
        "max_workers": flow.max_workers,
        "max_async": flow.max_async,
        "history_limit": flow.history_limit,
        "error_handler": error_handler_doc(eh, "error_handler") if eh is not None else None,
        "routines": routines,
        "connections": [
            connection_doc(conn, subpath("connections", i))
            for i, conn in enumerate(flow.connections)
        ],
    }


def _check_count(value: int | None, path: str, top: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not 1 <= value <= top:
        msg = f"expected an integer between 1 and {top}, got {value!r}"
        raise DeserializationError(msg, path=path)


def _read(data: Any) -> tuple[FlowDoc, ErrorHandler | None, dict[str, Routine]]:
    # The structured document, the flow's error handler and the routines, all resolved
    # and checked (connections included) before any flow changes.
    check_header(data, FLOW_FORMAT)
    doc = structure(data, FlowDoc, "")
    if doc.execution_strategy not in EXECUTION_STRATEGIES:
        msg = f"unknown execution strategy {show(doc.execution_strategy, 100)}"
        raise DeserializationError(msg, path="execution_strategy")
    _check_count(doc.max_workers, "max_workers", _MAX_WORKERS)
    _check_count(doc.max_async, "max_async", _MAX_WORKERS)
    _check_count(doc.history_limit, "history_limit", 2**62, allow_none=True)
    flow_eh = (
        build_error_handler(doc.error_handler, "error_handler")
        if doc.error_handler is not None
        else None
    )
    built: dict[str, Routine] = {}
    for rid, rdoc in doc.routines.items():
        path = subpath("routines", rid)
        if not rid:
            msg = "a routine id must be a non-empty string"
            raise DeserializationError(msg, path="routines")
        routine = new_routine(rdoc.type, path)
        apply_routine_doc(routine, rdoc, path)
        built[rid] = routine
    for i, cdoc in enumerate(doc.connections):
        path = subpath("connections", i)
        source = built.get(cdoc.source_routine_id)
        target = built.get(cdoc.target_routine_id)
        checks = (
            (source is not None, "source_routine_id", f"no routine {cdoc.source_routine_id!r}"),
            (target is not None, "target_routine_id", f"no routine {cdoc.target_routine_id!r}"),
            (
                source is not None and source.get_event(cdoc.source_event) is not None,
                "source_event",
                f"routine {cdoc.source_routine_id!r} has no event {cdoc.source_event!r}",
            ),
            (
                target is not None and target.get_slot(cdoc.target_slot) is not None,
                "target_slot",
                f"routine {cdoc.target_routine_id!r} has no slot {cdoc.target_slot!r}",
            ),
        )
        for ok, field, msg in checks:
            if not ok:
                raise DeserializationError(msg, path=subpath(path, field))
    return doc, flow_eh, built


def load_flow_into(flow: FlowDefinition, data: Any) -> None:
    """
    Rebuild ``flow`` from a :func:`dump_flow` document: each routine is created by
    ``cls()`` from the routine registry and restored (its config merged into the defaults
    the constructor set), and connections are made again with ``flow.connect`` by routine
    ids. The flow is changed only when the whole document is valid.

    Raises:
        DeserializationError: ``data`` is malformed or names an unknown routine type,
            method, callable, exception class, event or slot.

    .. versionchanged:: 0.10
       A routine's config is merged into its defaults instead of replacing them.
    """
    doc, flow_eh, built = _read(data)
    flow.redefine(
        flow_id=doc.flow_id,
        execution_strategy=doc.execution_strategy,
        max_workers=doc.max_workers,
        max_async=doc.max_async,
        history_limit=doc.history_limit,
        error_handler=flow_eh,
    )
    for rid, routine in built.items():
        flow.add_routine(routine, rid)
    for cdoc in doc.connections:
        flow.connect(
            cdoc.source_routine_id,
            cdoc.source_event,
            cdoc.target_routine_id,
            cdoc.target_slot,
            dict(cdoc.param_mapping) or None,
        )


@overload
def load_flow(data: Any) -> FlowDefinition: ...


@overload
def load_flow(data: Any, flow_class: type[_FD]) -> _FD: ...


def load_flow(data: Any, flow_class: type[FlowDefinition] = FlowDefinition) -> FlowDefinition:
    """
    Return a new flow made from a :func:`dump_flow` document, as :func:`load_flow_into`
    rebuilds one.

    Args:
        flow_class: The class to make the flow of (``routilux.Flow`` for one that runs
            jobs); it is called with no arguments.

    Raises:
        DeserializationError: As :func:`load_flow_into`.

    .. versionadded:: 0.10
    """
    flow = flow_class()
    load_flow_into(flow, data)
    return flow

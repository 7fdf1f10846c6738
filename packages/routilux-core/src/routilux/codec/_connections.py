"""
Connections as documents (``routilux.connection``).

A connection is written as its source and target routine ids, event and slot names, and
its parameter mapping.
"""

from __future__ import annotations

from typing import Any

from routilux.codec._converter import check_header, header, structure
from routilux.codec._schemas import ConnectionDoc
from routilux.codec._values import subpath
from routilux.exceptions import SerializationError
from routilux.model._connection import Connection
from routilux.model._event import Event
from routilux.model._slot import Slot


__all__ = ["connection_doc", "dump_connection", "load_connection", "load_connection_into"]

_FORMAT = "routilux.connection"


def connection_doc(conn: Connection, path: str) -> dict[str, Any]:
    """
    Return ``conn`` (found at ``path``) as document data.

    Raises:
        SerializationError: An end of the connection is missing or belongs to no routine.
    """
    event, slot = conn.source_event, conn.target_slot
    source_id, target_id = conn.source_routine_id, conn.target_routine_id
    # A connection made without Flow.connect: its ends' routines give their ids.
    if source_id is None and event is not None and event.routine is not None:
        source_id = event.routine.get_id()
    if target_id is None and slot is not None and slot.routine is not None:
        target_id = slot.routine.get_id()
    values = {
        "source_routine_id": source_id,
        "source_event": event.name if event is not None else None,
        "target_routine_id": target_id,
        "target_slot": slot.name if slot is not None else None,
    }
    for key, value in values.items():
        if not isinstance(value, str):
            msg = (
                f"cannot serialize {path or 'the connection'} {conn!r}: its {key} is unknown "
                "(an end without a routine)"
            )
            raise SerializationError(msg, path=subpath(path, key))
    return {**values, "param_mapping": dict(conn.param_mapping)}


def dump_connection(conn: Connection) -> dict[str, Any]:
    """
    Return a :class:`~routilux.Connection` as a ``routilux.connection`` document: source
    and target routine ids, event and slot names, and the parameter mapping.

    Raises:
        SerializationError: An end of the connection is missing or belongs to no routine.
    """
    return {**header(_FORMAT), **connection_doc(conn, "")}


def load_connection(data: Any) -> Connection:
    """
    Return a new connection made from a :func:`dump_connection` document: routine ids and
    mapping, with unattached placeholder ends named after the event and slot (the flow
    that loads it binds real ones).

    Raises:
        DeserializationError: ``data`` is malformed.

    .. versionadded:: 0.10
    """
    check_header(data, _FORMAT)
    doc = structure(data, ConnectionDoc, "")
    conn = Connection(param_mapping=dict(doc.param_mapping))
    conn.source_routine_id = doc.source_routine_id
    conn.target_routine_id = doc.target_routine_id
    conn.source_event = Event(doc.source_event)
    conn.target_slot = Slot(doc.target_slot)
    return conn


def load_connection_into(conn: Connection, data: Any) -> None:
    """
    Read a :func:`dump_connection` document into ``conn``: routine ids and mapping, with
    unattached placeholder ends named after the event and slot (``Flow.deserialize``
    binds real ones).

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    fresh = load_connection(data)
    conn.source_routine_id = fresh.source_routine_id
    conn.target_routine_id = fresh.target_routine_id
    conn.source_event = fresh.source_event
    conn.target_slot = fresh.target_slot
    conn.param_mapping = fresh.param_mapping

"""
Flows, routines and jobs as plain JSON-able data, and safe loading of that data.

Every document is a dict with a format name and a version, such as
``{"format": "routilux.flow", "version": 1, ...}``. Loading is safe by construction:
routine types resolve only through :mod:`routilux.registry`, callables only through the
callable registry (:func:`register_callable`), exception classes only through the
exception registry (:func:`register_exception`). Nothing a document names is imported,
evaluated or called while it is loaded, and a malformed document raises
:class:`~routilux.exceptions.DeserializationError` whose ``path`` names the bad field.
Loading never changes the caller's dict. A checkpoint may be a delta
(``routilux.job_state_delta``: what changed since the checkpoint before it), which
:func:`apply_delta` applies to the document it follows.

The public path of the :mod:`routilux.codec` modules and of the callable and exception
registries of :mod:`routilux.names`.
"""

from __future__ import annotations

from routilux.codec._connections import dump_connection, load_connection_into
from routilux.codec._converter import FORMAT_VERSION, configure_converter, make_converter
from routilux.codec._deltas import JOB_STATE_DELTA_FORMAT, apply_delta, is_delta
from routilux.codec._error_handlers import dump_error_handler, load_error_handler_into
from routilux.codec._flows import FLOW_FORMAT, dump_flow, load_flow_into
from routilux.codec._history import load_record_into
from routilux.codec._job_states import (
    JOB_STATE_FORMAT,
    dump_error_record,
    dump_job_state,
    load_job_state_into,
)
from routilux.codec._routines import dump_event, dump_routine, load_event_into, load_routine_into
from routilux.codec._slots import dump_slot, load_slot_into
from routilux.codec._tracker import dump_tracker, load_tracker_into
from routilux.codec._values import MAX_DEPTH, dumps_strict
from routilux.names._callables import (
    callable_name,
    get_callable,
    register_callable,
    unregister_callable,
)
from routilux.names._exceptions import exception_name, get_exception, register_exception


__all__ = [
    "FLOW_FORMAT",
    "FORMAT_VERSION",
    "JOB_STATE_DELTA_FORMAT",
    "JOB_STATE_FORMAT",
    "MAX_DEPTH",
    "apply_delta",
    "callable_name",
    "configure_converter",
    "dump_connection",
    "dump_error_handler",
    "dump_error_record",
    "dump_event",
    "dump_flow",
    "dump_job_state",
    "dump_routine",
    "dump_slot",
    "dump_tracker",
    "dumps_strict",
    "exception_name",
    "get_callable",
    "get_exception",
    "is_delta",
    "load_connection_into",
    "load_error_handler_into",
    "load_event_into",
    "load_flow_into",
    "load_job_state_into",
    "load_record_into",
    "load_routine_into",
    "load_slot_into",
    "load_tracker_into",
    "make_converter",
    "register_callable",
    "register_exception",
    "unregister_callable",
]

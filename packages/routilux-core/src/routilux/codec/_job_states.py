"""
Jobs as documents (``routilux.job_state``).

A job is written as everything its JobState holds but its live objects (output handler,
locks, threads, execution tracker).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from routilux.codec._converter import check_header, header, structure
from routilux.codec._history import (
    dump_field,
    dump_history,
    load_checked,
    load_history,
    load_object_list,
    parse_time,
    require_list,
    sanitized_history,
)
from routilux.codec._schemas import JobStateHead
from routilux.codec._values import sanitize, show, subpath
from routilux.exceptions import DeserializationError, SerializationError
from routilux.model._job_state import ErrorRecord, JobState


__all__ = [
    "JOB_STATE_FORMAT",
    "dump_error_record",
    "dump_job_state",
    "dump_parts",
    "load_job_state",
    "load_job_state_into",
]

JOB_STATE_FORMAT = "routilux.job_state"
"""Format name of a serialized :class:`~routilux.JobState`."""


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Building or reading a big job allocates hundreds of thousands of containers that all
    # stay alive, so the cyclic collector's young-generation passes find nothing and cost
    # about as much as the work itself. Pause it for the copy, as json.loads cannot.
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _iso(value: Any, path: str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    msg = f"cannot serialize {path}: expected a datetime, got {show(value, 200)}"
    raise SerializationError(msg, path=path)


def dump_job_state(js: JobState, *, lenient: bool = False) -> dict[str, Any]:
    """
    Return a :class:`~routilux.JobState` as a ``routilux.job_state`` document: a deep,
    JSON-able snapshot taken under the job's lock (the output handler, locks, tracker and
    the running job's scheduler data are not part of it).

    Args:
        lenient: Replace every value a strict JSON writer refuses (a set, an object, NaN,
            an integer too large...) by a string naming it, instead of raising: the last
            record of a job that failed because its data cannot be written.

    Raises:
        SerializationError: The job holds data that is not JSON (a set, an object, a
            non-string key...); the message gives its path.
    """
    with js.lock, _gc_paused():
        return {**header(JOB_STATE_FORMAT), **dump_parts(js, lenient=lenient)}


def dump_parts(
    js: JobState, *, lenient: bool = False, starts: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """
    With the job's lock held: the parts of the job's document (:func:`dump_job_state`
    without its header). With ``starts``, each growing part named there (see
    ``routilux.codec._deltas.APPENDED``) holds only its items from that index on: what a
    checkpoint delta needs.

    Raises:
        SerializationError: As :func:`dump_job_state` (with ``starts``, the path of an
            item of a growing part counts from its start).
    """
    field = _sanitized_field if lenient else dump_field
    history = sanitized_history if lenient else dump_history
    at = starts or {}

    def tail(items: Any, part: str) -> Any:
        start = at.get(part, 0)
        return items[start:] if start else items

    return {
        "flow_id": js.flow_id,
        "job_id": js.job_id,
        "status": str.__str__(js.status) if isinstance(js.status, str) else js.status,
        "current_routine_id": js.current_routine_id,
        "routine_states": field(js.read_routine_states(), "routine_states"),
        "execution_history": history(tail(js.execution_history.entries(), "execution_history")),
        "pause_points": field(tail(js.pause_points, "pause_points"), "pause_points"),
        "pending_tasks": field(js.pending_tasks, "pending_tasks"),
        "deferred_events": field(js.deferred_events, "deferred_events"),
        "shared_data": field(js.shared_data, "shared_data"),
        "shared_log": field(tail(js.shared_log, "shared_log"), "shared_log"),
        "output_log": field(tail(js.output_log, "output_log"), "output_log"),
        "metadata": field(js.metadata, "metadata"),
        "checkpoint": field(js.checkpoint, "checkpoint"),
        "created_at": _iso(js.created_at, "created_at"),
        "updated_at": _iso(js.updated_at, "updated_at"),
        "history_limit": js.history_limit,
        "history_dropped": js.history_dropped,
        "failed_tasks": field(js.failed_tasks, "failed_tasks"),
        "errors": [dump_error_record(e) for e in tail(js.errors, "errors")],
        "output_handler_failures": js.output_handler_failures,
        "checkpoint_seq": js.checkpoint_seq,
    }


def _sanitized_field(value: Any, path: str) -> Any:
    return sanitize(value)


def dump_error_record(error: ErrorRecord) -> dict[str, Any]:
    """
    Return an :class:`~routilux.job_state.ErrorRecord` as plain data.
    """
    return {
        "routine_id": error.routine_id,
        "slot": error.slot,
        "error_type": error.error_type,
        "message": error.message,
        "attempt": error.attempt,
        "time": error.time.isoformat(),
        "strategy": error.strategy,
        "traceback": error.traceback,
    }


def _check_fields(
    item: Any, path: str, fields: dict[str, tuple[bool, tuple[type, ...]]]
) -> dict[str, Any]:
    # A checked copy of an object whose fields must have the given types.
    if type(item) is not dict:
        msg = f"expected an object (dict), got {show(item, 200)}"
        raise DeserializationError(msg, path=path)
    for key, (required, kinds) in fields.items():
        if key not in item:
            if required:
                raise DeserializationError("required field missing", path=subpath(path, key))
            continue
        value = item[key]
        if type(value) not in kinds:
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            msg = f"expected {names}, got {show(value, 200)}"
            raise DeserializationError(msg, path=subpath(path, key))
    result: dict[str, Any] = load_checked(item, path)
    return result


def _check_count(number: int, path: str) -> None:
    if not 0 <= number < 2**62:
        msg = f"expected an integer >= 0, got {number!r}"
        raise DeserializationError(msg, path=path)


_NoneType = type(None)
_PENDING_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "slot_routine_id": (True, (str,)),
    "slot_name": (True, (str,)),
    "data": (True, (dict,)),
    "connection_source_routine_id": (False, (str, _NoneType)),
    "connection_source_event_name": (False, (str, _NoneType)),
    "connection_target_routine_id": (False, (str, _NoneType)),
    "connection_target_slot_name": (False, (str, _NoneType)),
    "param_mapping": (False, (dict,)),
    "priority": (False, (int,)),
    "retry_count": (False, (int,)),
    "max_retries": (False, (int,)),
    "created_at": (False, (str, _NoneType)),
    "seq": (False, (int,)),
    "entry": (False, (bool,)),
}
_FAILED_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    **_PENDING_FIELDS,
    "error": (False, (dict, _NoneType)),
}
_DEFERRED_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "routine_id": (True, (str,)),
    "event_name": (True, (str,)),
    "data": (True, (dict,)),
    "timestamp": (False, (str, _NoneType)),
}
_ERROR_FIELDS: dict[str, tuple[bool, tuple[type, ...]]] = {
    "routine_id": (True, (str,)),
    "slot": (True, (str,)),
    "error_type": (True, (str,)),
    "message": (True, (str,)),
    "attempt": (True, (int,)),
    "time": (True, (str,)),
    "strategy": (True, (str,)),
    "traceback": (False, (str,)),
}


def _load_tasks(
    value: Any, name: str, fields: dict[str, tuple[bool, tuple[type, ...]]]
) -> list[dict[str, Any]]:
    # Pending or failed activations, as data.
    out = []
    for i, item in enumerate(require_list(value, name)):
        path = f"{name}[{i}]"
        task = _check_fields(item, path, fields)
        for key, val in task.get("param_mapping", {}).items():
            if type(val) is not str:
                msg = f"expected a string, got {show(val, 200)}"
                raise DeserializationError(msg, path=subpath(subpath(path, "param_mapping"), key))
        for key in ("seq", "retry_count"):
            _check_count(task.get(key, 0), subpath(path, key))
        out.append(task)
    return out


def _load_errors(value: Any) -> list[ErrorRecord]:
    out = []
    for i, item in enumerate(require_list(value, "errors")):
        path = f"errors[{i}]"
        fields = _check_fields(item, path, _ERROR_FIELDS)
        out.append(
            ErrorRecord(
                routine_id=fields["routine_id"],
                slot=fields["slot"],
                error_type=fields["error_type"],
                message=fields["message"],
                attempt=fields["attempt"],
                time=parse_time(fields["time"], subpath(path, "time")),
                strategy=fields["strategy"],
                traceback=fields.get("traceback", ""),
            )
        )
    return out


def _load_deferred(value: Any) -> list[dict[str, Any]]:
    return [
        _check_fields(item, f"deferred_events[{i}]", _DEFERRED_FIELDS)
        for i, item in enumerate(require_list(value, "deferred_events"))
    ]


def _load_routine_states(value: Any) -> dict[str, dict[str, Any]]:
    if type(value) is not dict:
        msg = f"expected an object (dict), got {show(value, 200)}"
        raise DeserializationError(msg, path="routine_states")
    out = {}
    for key, state in value.items():
        if type(key) is not str:
            msg = f"keys must be strings, got {show(key, 100)}"
            raise DeserializationError(msg, path="routine_states")
        out[key] = load_checked(state, subpath("routine_states", key))
    return out


def _load(data: Any, receiver: JobState | None) -> JobState:
    # A new JobState made from a job document; a legacy document takes the flow id, job
    # id and status it lacks from ``receiver`` (the original kept the receiving JobState's
    # values), else from a new JobState.
    legacy = check_header(data, JOB_STATE_FORMAT, legacy_type="JobState")
    if legacy:
        base = receiver if receiver is not None else JobState()
        with base.lock:
            kept = {"flow_id": base.flow_id, "job_id": base.job_id, "status": str(base.status)}
        data = {**kept, **data}
    head = structure(data, JobStateHead, "")
    limit = head.history_limit
    if limit is not None and not 1 <= limit < 2**62:
        msg = f"expected a positive integer or null, got {limit!r}"
        raise DeserializationError(msg, path="history_limit")
    _check_count(head.history_dropped, "history_dropped")
    get = data.get
    with _gc_paused():
        routine_states = _load_routine_states(get("routine_states", {}))
        history = load_history(get("execution_history", []), legacy)
        pause_points = load_object_list(get("pause_points", []), "pause_points")
        pending = _load_tasks(get("pending_tasks", []), "pending_tasks", _PENDING_FIELDS)
        deferred = _load_deferred(get("deferred_events", []))
        shared_data = load_checked(get("shared_data", {}), "shared_data")
        shared_log = load_object_list(get("shared_log", []), "shared_log")
        output_log = load_object_list(get("output_log", []), "output_log")
        failed = _load_tasks(get("failed_tasks", []), "failed_tasks", _FAILED_FIELDS)
        errors = _load_errors(get("errors", []))
    _check_count(head.checkpoint_seq, "checkpoint_seq")
    _check_count(head.output_handler_failures, "output_handler_failures")
    now = datetime.now()
    # A history longer than its limit keeps the newest records; the rest count as dropped.
    return JobState(
        flow_id=head.flow_id,
        job_id=head.job_id,
        status=head.status,
        current_routine_id=head.current_routine_id,
        routine_states=routine_states,
        execution_history=history,  # type: ignore[arg-type]  # any iterable of records or bookings
        pause_points=pause_points,
        pending_tasks=pending,
        deferred_events=deferred,
        shared_data=shared_data,
        shared_log=shared_log,
        output_log=output_log,
        metadata=dict(head.metadata),
        failed_tasks=failed,
        checkpoint=dict(head.checkpoint) if head.checkpoint is not None else None,
        created_at=head.created_at or now,
        updated_at=head.updated_at or now,
        history_limit=limit,
        history_dropped=head.history_dropped,
        output_handler_failures=head.output_handler_failures,
        checkpoint_seq=head.checkpoint_seq,
        errors=errors or None,
    )


def load_job_state(data: Any) -> JobState:
    """
    Return a new :class:`~routilux.JobState` made from a :func:`dump_job_state` document
    (or the original library's ``{"_type": "JobState", ...}``); ``data`` is not changed.

    Raises:
        DeserializationError: ``data`` is malformed; the message gives the bad field's path.

    .. versionadded:: 0.10
    """
    return _load(data, None)


def load_job_state_into(js: JobState, data: Any) -> None:
    """
    Replace the state of ``js`` with a :func:`dump_job_state` document (or the original
    library's ``{"_type": "JobState", ...}``). Everything is checked and copied before
    ``js`` changes; its output handler is kept, and it is detached from any running job.

    Raises:
        DeserializationError: ``data`` is malformed; the message gives the bad field's path.
    """
    js.restore_from(_load(data, js))

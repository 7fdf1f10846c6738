"""
A job's big lists as document data: its execution history and its logs.

These are the hot loops of writing and reading a big job: plain cases are copied in a few
C-level passes; anything else takes the careful path, which reports errors with their paths.
"""

from __future__ import annotations

from datetime import datetime
from itertools import chain, compress, repeat
from operator import is_, itemgetter
from typing import Any

from routilux.codec._converter import check_header
from routilux.codec._values import (
    MAX_INT_BITS,
    BadValue,
    dump_value,
    format_path,
    load_object,
    load_value,
    sanitize,
    show,
    subpath,
)
from routilux.exceptions import DeserializationError, SerializationError
from routilux.model._records import Booking, ExecutionRecord, as_record


__all__ = [
    "dump_field",
    "dump_history",
    "load_checked",
    "load_history",
    "load_object_list",
    "load_record",
    "load_record_into",
    "parse_time",
    "require_list",
    "sanitized_history",
]

_RECORD_FORMAT = "routilux.execution_record"


def dump_field(value: Any, path: str) -> Any:
    """
    Return a JSON-able copy of a job's field (found at ``path``): a log list of flat dicts
    is copied fast, anything else through the checked deep copy.

    Raises:
        SerializationError: The value holds data that is not JSON; the message gives its path.
    """
    if type(value) is list:  # a log: usually a list of flat dicts
        copies = _flat_copies(value, check_ints=False)
        if copies is not None:
            return copies
    try:
        return dump_value(value)
    except BadValue as bad:
        where = format_path(path, bad.parts)
        msg = f"cannot serialize {where}: {bad.reason}"
        raise SerializationError(msg, path=where) from None


_FLAT_TYPES = (str, int, float, bool, type(None))
_FLAT_SET = frozenset(_FLAT_TYPES)
_STR_ONLY = frozenset((str,))
_DICT_ONLY = frozenset((dict,))
_INT_LIMIT = 1 << MAX_INT_BITS  # abs(i) < _INT_LIMIT  <=>  i.bit_length() <= MAX_INT_BITS
_isoformat = datetime.isoformat
_fromtimestamp = datetime.fromtimestamp
_fourth = itemgetter(3)
_TUPLE_ONLY = frozenset((tuple,))
_FLOAT_ONLY = frozenset((float,))
_DATETIME_ONLY = frozenset((datetime,))


def _flat_copies(items: list[Any], check_ints: bool) -> list[dict[str, Any]] | None:
    # The common shape of a log: flat dicts, string keys, scalar values. Checked with a
    # few passes that run in C (no bytecode per value) and copied with dict(); ``None``
    # when anything differs, and the caller takes the careful path, which copies nested
    # values and reports errors with their paths. (For the history's payloads, one dict
    # per record, the per-record loop is as fast: the passes cost as much as the loop.)
    if not items:
        return []
    if set(map(type, items)) != _DICT_ONLY:
        return None
    if not _STR_ONLY.issuperset(map(type, chain.from_iterable(items))):
        return None
    values = list(chain.from_iterable(map(dict.values, items)))
    kinds = set(map(type, values))
    if not _FLAT_SET.issuperset(kinds):
        return None
    if check_ints and int in kinds:
        ints = list(compress(values, map(is_, map(type, values), repeat(int))))
        if max(ints) >= _INT_LIMIT or min(ints) <= -_INT_LIMIT:
            return None
    return list(map(dict, items))


def _dump_record(record: ExecutionRecord) -> dict[str, Any]:
    data = record.data
    try:
        plain = dump_value(data) if data else {}
    except BadValue as bad:
        bad.parts.append("data")
        raise
    return {
        "routine_id": record.routine_id,
        "event_name": record.event_name,
        "data": plain,
        "timestamp": record.timestamp.isoformat(),
    }


def _history_stamps(items: list[Any]) -> list[str]:
    # The ISO timestamps of the history's stored items, in C-level passes over items of
    # one kind (a call per record from Python costs more than the conversion itself).
    if set(map(type, items)) == _TUPLE_ONLY:
        whens = list(map(_fourth, items))
    else:  # records, or bookings and the records made of those read already
        whens = [item[3] if item.__class__ is tuple else item.timestamp for item in items]
    kinds = set(map(type, whens))
    if kinds == _FLOAT_ONLY:
        return list(map(_isoformat, map(_fromtimestamp, whens)))
    if kinds == _DATETIME_ONLY:
        return list(map(_isoformat, whens))
    return [_isoformat(_fromtimestamp(w) if w.__class__ is float else w) for w in whens]


def dump_history(items: list[Any]) -> list[dict[str, Any]]:
    """
    Return the history's stored entries (``ExecutionHistory.entries()``: records, or the
    scheduler's bookings) as document records.

    Raises:
        SerializationError: A record holds data that is not JSON, or an entry is not a
            record; the message gives its path.
    """
    # The hot loop of a big job. Flat payloads (string keys, scalar values) are copied
    # with dict(); anything else goes through the checked deep copy.
    out: list[dict[str, Any]] = []
    append = out.append
    i = 0
    try:
        stamps = _history_stamps(items)
        for i, (item, stamp) in enumerate(zip(items, stamps, strict=True)):  # noqa: B007
            if item.__class__ is tuple:  # a booking; an emit's names its target too
                rid, name, data = item[0], item[1], item[2]
            else:
                rid = item.routine_id
                name = item.event_name
                data = item.data
            if type(data) is dict:
                for key, value in data.items():
                    if type(key) is not str or type(value) not in _FLAT_TYPES:
                        data = dump_value(data)
                        break
                else:
                    data = dict(data)
            else:
                data = dump_value(data)
            append({"routine_id": rid, "event_name": name, "data": data, "timestamp": stamp})
    except (BadValue, AttributeError, TypeError, ValueError):
        pass
    else:
        return out
    for j, item in enumerate(items[i:], start=i):  # find the bad record
        try:
            _dump_record(as_record(item))
        except BadValue as bad:
            where = format_path(f"execution_history[{j}]", bad.parts)
            msg = f"cannot serialize {where}: {bad.reason}"
            raise SerializationError(msg, path=where) from None
        except (AttributeError, TypeError):
            where = f"execution_history[{j}]"
            msg = f"cannot serialize {where}: not an ExecutionRecord: {show(item, 200)}"
            raise SerializationError(msg, path=where) from None
    return out  # pragma: no cover - the fast path failed, so the loop raised


def sanitized_history(items: list[Any]) -> list[dict[str, Any]]:
    """
    Return the history's stored entries as document records in which every value a
    strict JSON writer refuses is replaced by a string naming it (see ``sanitize``).
    """
    records = map(as_record, items)
    return [
        {
            "routine_id": str(r.routine_id),
            "event_name": str(r.event_name),
            "data": sanitize(r.data),
            "timestamp": r.timestamp.isoformat(),
        }
        for r in records
    ]


def load_checked(value: Any, path: str, want_dict: bool = True) -> Any:
    """
    Return a checked deep copy of a JSON object (any JSON value unless ``want_dict``)
    found at ``path``.

    Raises:
        DeserializationError: The value is not JSON data of that kind; the message gives
            the path.
    """
    try:
        return load_object(value) if want_dict else load_value(value)
    except BadValue as bad:
        raise DeserializationError(bad.reason, path=format_path(path, bad.parts)) from None


def require_list(value: Any, path: str) -> list[Any]:
    """
    Return ``value`` (found at ``path``) if it is a list.

    Raises:
        DeserializationError: It is not.
    """
    if type(value) is not list:
        msg = f"expected a list, got {show(value, 200)}"
        raise DeserializationError(msg, path=path)
    return value


def load_object_list(value: Any, path: str) -> list[dict[str, Any]]:
    """
    Return checked deep copies of a list of JSON objects (a log) found at ``path``.

    Raises:
        DeserializationError: It is not a list of JSON objects; the message gives the path.
    """
    items = require_list(value, path)
    copies = _flat_copies(items, check_ints=True)
    if copies is not None:
        return copies
    out: list[dict[str, Any]] = []
    append = out.append
    i = 0
    try:
        for i, item in enumerate(items):  # noqa: B007 - ``i`` locates a failure
            append(load_object(item))
    except BadValue as bad:
        where = format_path(f"{path}[{i}]", bad.parts)
        raise DeserializationError(bad.reason, path=where) from None
    return out


def _check_record(item: Any, path: str, legacy: bool) -> tuple[str, str, dict[str, Any], datetime]:
    # The slow, precise check of one history record (used to explain a failure).
    if type(item) is not dict:
        msg = f"expected a record object (dict), got {show(item, 200)}"
        raise DeserializationError(msg, path=path)
    values = []
    for key in ("routine_id", "event_name"):
        if key not in item:
            raise DeserializationError("required field missing", path=subpath(path, key))
        if type(item[key]) is not str:
            msg = f"expected a string, got {show(item[key], 200)}"
            raise DeserializationError(msg, path=subpath(path, key))
        values.append(item[key])
    raw = item.get("data")
    data = {} if raw is None else load_checked(raw, subpath(path, "data"))
    stamp = item.get("timestamp")
    if stamp is None and (legacy or "timestamp" not in item):
        if not legacy:
            msg = "required field missing"
            raise DeserializationError(msg, path=subpath(path, "timestamp"))
        when = datetime.now()
    else:
        when = parse_time(stamp, subpath(path, "timestamp"))
    return values[0], values[1], data, when


def parse_time(value: Any, path: str) -> datetime:
    """
    Return the ISO 8601 timestamp found at ``path`` as a datetime.

    Raises:
        DeserializationError: It is not an ISO 8601 timestamp string.
    """
    if type(value) is not str:
        msg = f"expected an ISO 8601 timestamp string, got {show(value, 200)}"
        raise DeserializationError(msg, path=path)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        msg = f"expected an ISO 8601 timestamp, got {show(value, 200)}"
        raise DeserializationError(msg, path=path) from None


def load_history(value: Any, legacy: bool) -> list[Booking]:
    """
    Return the records of a job document's ``execution_history`` as bookings (tuples),
    which the history turns into ExecutionRecords when they are read. A ``legacy``
    document (the original library's) may leave out timestamps.

    Raises:
        DeserializationError: A record is malformed; the message gives its path.
    """
    # The hot loop of a big job: one pass, no call per field; on any doubt the record is
    # checked again slowly to report the exact path.
    items = require_list(value, "execution_history")
    fromiso = datetime.fromisoformat
    out: list[Booking] = []
    append = out.append
    i = 0
    try:
        for i, item in enumerate(items):  # noqa: B007 - ``i`` locates a failure
            rid = item["routine_id"]
            name = item["event_name"]
            stamp = item["timestamp"]
            data = item["data"]
            if type(rid) is not str or type(name) is not str or type(stamp) is not str:
                raise BadValue("bad field")
            if type(data) is not dict:
                raise BadValue("bad data")
            for key, val in data.items():
                if type(key) is not str:
                    data = load_object(data)
                    break
                kind = type(val)
                if kind is int:
                    if val.bit_length() > MAX_INT_BITS:
                        data = load_object(data)
                        break
                elif kind is not str and kind is not float and kind is not bool and val is not None:
                    data = load_object(data)
                    break
            else:
                data = dict(data)
            append((rid, name, data, fromiso(stamp)))
    except (BadValue, KeyError, TypeError, ValueError):
        pass
    else:
        return out
    # The fast path failed on item ``i``: check it and the rest precisely.
    for j in range(i, len(items)):
        out.append(_check_record(items[j], f"execution_history[{j}]", legacy))
    return out


def load_record(data: Any) -> ExecutionRecord:
    """
    Return a new :class:`~routilux.ExecutionRecord` made from a record dict (as found in
    a job document, or ``ExecutionRecord.serialize()`` output with its ``_type``).

    Raises:
        DeserializationError: ``data`` is malformed.

    .. versionadded:: 0.10
    """
    legacy = False
    if type(data) is dict and "format" in data:
        check_header(data, _RECORD_FORMAT)
    elif type(data) is dict and "_type" in data:
        legacy = check_header(data, _RECORD_FORMAT, legacy_type="ExecutionRecord")
    return ExecutionRecord(*_check_record(data, "", legacy))


def load_record_into(record: ExecutionRecord, data: Any) -> None:
    """
    Fill an :class:`~routilux.ExecutionRecord` from a record dict (as found in a job
    document, or ``ExecutionRecord.serialize()`` output with its ``_type``).

    Raises:
        DeserializationError: ``data`` is malformed.
    """
    fresh = load_record(data)
    record.routine_id = fresh.routine_id
    record.event_name = fresh.event_name
    record.data = fresh.data
    record.timestamp = fresh.timestamp

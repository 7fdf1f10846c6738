"""
Checked deep copies of JSON-like values, and the paths and texts of errors about them.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from routilux.exceptions import SerializationError


__all__ = [
    "MAX_DEPTH",
    "MAX_INT_BITS",
    "BadValue",
    "check_strict",
    "dump_value",
    "dumps_strict",
    "format_path",
    "load_object",
    "load_value",
    "not_json",
    "sanitize",
    "show",
    "subpath",
]

MAX_DEPTH = 100
"""How deeply containers may nest inside one value of a document."""

_NoneType = type(None)


def _max_int_bits() -> int:
    # Ints wider than this could not be written as JSON text (CPython's digit limit).
    get = getattr(sys, "get_int_max_str_digits", None)
    digits = get() if get is not None else 0
    return int(digits * 3.32) if digits else 1 << 20


MAX_INT_BITS = _max_int_bits()
"""The widest integer (in bits) a document may hold: one a JSON writer can write."""


class BadValue(Exception):
    """
    A value cannot be copied; ``parts`` collects the path to it, innermost first, while
    the exception travels up (so the good path costs nothing).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.parts: list[str | int] = []


def format_path(prefix: str, parts: list[str | int]) -> str:
    """
    Join a dotted ``prefix`` and path parts given innermost first
    (``format_path("a", [0, "b"])`` is ``"a.b[0]"``).
    """
    out = prefix
    for part in reversed(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def subpath(path: str, part: str | int) -> str:
    """
    Return the path of ``part`` inside ``path`` (``subpath("a", 0)`` is ``"a[0]"``).
    """
    return format_path(path, [part])


def show(value: Any, limit: int) -> str:
    """
    Return ``repr(value)`` cut to ``limit`` characters, for error messages; it never
    raises (a hostile document may hold values whose repr fails: a 5,000-digit int, lists
    nested past the recursion limit).
    """
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any failure of repr just gets a neutral description
        text = f"<unprintable {type(value).__name__}>"
    return text[:limit]


def _too_deep() -> BadValue:
    return BadValue(f"containers nested more than {MAX_DEPTH} levels deep")


def load_value(value: Any, depth: int = 0) -> Any:
    """
    Return a deep copy of a JSON value read from a document.

    Accepts dicts with string keys, lists (tuples become lists), strings, ints, floats,
    bools and ``None``.

    Raises:
        BadValue: Anything else, or nesting deeper than :data:`MAX_DEPTH`.
    """
    t = type(value)
    if t is str or t is float or t is bool or value is None:
        return value
    if t is int:
        if value.bit_length() > MAX_INT_BITS:
            raise BadValue(f"integer too large ({value.bit_length()} bits)")
        return value
    if t is dict:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                err = BadValue(f"keys must be strings, got {key!r}")
                err.parts.append(repr(key))
                raise err
            ti = type(item)
            if ti is str or ti is float or ti is bool or item is None:
                out[key] = item
                continue
            try:
                out[key] = load_value(item, depth + 1)
            except BadValue as exc:
                exc.parts.append(key)
                raise
        return out
    if t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        items = []
        for index, item in enumerate(value):
            ti = type(item)
            if ti is str or ti is float or ti is bool or item is None:
                items.append(item)
                continue
            try:
                items.append(load_value(item, depth + 1))
            except BadValue as exc:
                exc.parts.append(index)
                raise
        return items
    raise BadValue(
        f"expected a JSON value (dict, list, str, int, float, bool or None), got {value!r}"
    )


def load_object(value: Any) -> dict[str, Any]:
    """
    Like :func:`load_value`, for a value that must be a dict.

    Raises:
        BadValue: ``value`` is not a dict, or holds a bad value.
    """
    if type(value) is not dict:
        raise BadValue(f"expected an object (dict), got {value!r}")
    result: dict[str, Any] = load_value(value)
    return result


def dump_value(
    value: Any,
    encode_other: Callable[[Any], Any] | None = None,
    depth: int = 0,
) -> Any:
    """
    Return a deep copy of ``value`` as plain JSON data, for writing a document.

    Tuples become lists; subclasses of str, int and float (such as str enums) become the
    plain type. ``encode_other`` may turn other values (callables) into data; it raises
    :class:`BadValue` for what it cannot encode.

    Raises:
        BadValue: A value that is not JSON data, a non-string key, or nesting deeper
            than :data:`MAX_DEPTH`.
    """
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if t is dict:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                if isinstance(key, str):
                    key = str.__str__(key)  # a str enum key, written plainly
                else:
                    err = BadValue(f"keys must be strings, got {key!r}")
                    err.parts.append(repr(key))
                    raise err
            ti = type(item)
            if ti is str or ti is int or ti is float or ti is bool or item is None:
                out[key] = item
                continue
            try:
                out[key] = dump_value(item, encode_other, depth + 1)
            except BadValue as exc:
                exc.parts.append(key)
                raise
        return out
    if t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _too_deep()
        items = []
        for index, item in enumerate(value):
            ti = type(item)
            if ti is str or ti is int or ti is float or ti is bool or item is None:
                items.append(item)
                continue
            try:
                items.append(dump_value(item, encode_other, depth + 1))
            except BadValue as exc:
                exc.parts.append(index)
                raise
        return items
    if isinstance(value, dict):
        return dump_value(dict(value), encode_other, depth)
    if isinstance(value, (list, tuple, deque)):
        return dump_value(list(value), encode_other, depth)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if encode_other is not None:
        return encode_other(value)
    raise BadValue(not_json(value, repr(value)))


def not_json(value: Any, shown: str) -> str:
    """
    Return the reason a value is refused: its type first (``set is not JSON: {'a'}``).
    """
    kind = type(value).__name__
    return f"{kind} is not JSON: {shown} (JSON data is dict, list, str, int, float, bool or None)"


def _placeholder(value: Any, reason: str) -> str:
    return f"<not JSON: {type(value).__name__}: {reason}>"


def _refuse(value: Any, reason: str) -> Any:
    raise BadValue(reason)


def _strict(value: Any, on_bad: Callable[[Any, str], Any], depth: int = 0) -> Any:
    # A copy of ``value`` as strict JSON (RFC 8259: no NaN or Infinity, ints a JSON writer
    # can write); ``on_bad(value, reason)`` gives what stands for anything else.
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        if value.bit_length() > MAX_INT_BITS:
            return on_bad(value, f"integer too large ({value.bit_length()} bits)")
        return value
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return on_bad(value, f"{value!r} is not a JSON number")
        return value
    if depth >= MAX_DEPTH and (t is dict or t is list or t is tuple):
        return on_bad(value, f"containers nested more than {MAX_DEPTH} levels deep")
    if t is dict:
        out = {}
        for key, item in value.items():
            name = key if type(key) is str else on_bad(key, f"keys must be strings, got {key!r}")
            try:
                out[str(name)] = _strict(item, on_bad, depth + 1)
            except BadValue as exc:
                exc.parts.append(str(name))
                raise
        return out
    if t is list or t is tuple:
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_strict(item, on_bad, depth + 1))
            except BadValue as exc:
                exc.parts.append(index)
                raise
        return items
    return on_bad(value, f"{type(value).__name__} is not JSON")


def check_strict(value: Any) -> None:
    """
    Check that plain data can be written as strict JSON: no NaN or Infinity, no integer
    too large to write, string keys only.

    Raises:
        BadValue: The first value that cannot, with its path.
    """
    _strict(value, _refuse)


def sanitize(value: Any) -> Any:
    """
    Return a strict-JSON copy of ``value`` in which every value a JSON writer refuses (a
    set, an object, NaN, an integer too large, a non-string key...) is replaced by a string
    naming it: for the last record of a job that failed because its data cannot be written.
    """
    return _strict(value, _placeholder)


def dumps_strict(data: Any, what: str = "") -> str:
    """
    Return ``data`` (plain JSON data) as compact strict JSON text (RFC 8259: no NaN or
    Infinity, which standard parsers refuse), as job stores write it.

    Raises:
        SerializationError: A value cannot be written; the message gives its path under
            ``what``.
    """
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        try:
            check_strict(data)
        except BadValue as bad:
            where = format_path(what, bad.parts)
            msg = f"cannot write {where or 'the value'}: {bad.reason}"
            raise SerializationError(msg, path=where) from None
        msg = f"cannot write {what or 'the value'} as JSON: {exc}"
        raise SerializationError(msg, path=what) from None

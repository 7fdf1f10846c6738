"""
Plain data for JSON lines and structured logs: values copied into dicts, lists and scalars.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any


__all__ = ["dumps_line", "plain"]

_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """
    Return ``value`` as JSON-able plain data, copied so that later changes to the original
    do not show.

    Dicts, lists, tuples and sets become dicts and lists (dict keys become strings),
    datetimes become ISO strings, objects with a ``serialize()`` method (an
    ``ExecutionRecord``...) become its result, enums their value, anything else its ``repr``.
    """
    if isinstance(value, enum.Enum):  # before str: a str-enum is a str
        return plain(value.value)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    serialize = getattr(value, "serialize", None)
    if callable(serialize):
        try:
            return plain(serialize())
        except Exception:  # noqa: BLE001  # fall back to the repr below
            pass
    if hasattr(value, "__iter__") and hasattr(value, "__len__"):
        return [plain(v) for v in value]  # a deque (bounded history)...
    return repr(value)


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """
    Encode one record as a UTF-8 JSON line (ending with ``\\n``).
    """
    text = json.dumps(plain(record), ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return (text + "\n").encode("utf-8")

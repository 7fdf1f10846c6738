"""
Checkpoint deltas: what changed in a job's document since its previous checkpoint, and how
to apply it to rebuild the document the job had then.

A delta (``{"format": "routilux.job_state_delta", ...}``) holds, for the parts of a
``routilux.job_state`` document:

* ``set``: parts written whole: the scalars (status, times, counters...) and the small lists
  that are replaced rather than grown (pending, failed and deferred work), and any list that
  was rewritten;
* ``append``: for the lists that only grow (the history, the shared log, the outputs, the
  pause points, the errors), the items added, with ``at``, the count before them (for the
  history: every record ever booked, dropped ones included), so a gap is detected;
* ``keys``: for the dicts (shared data, routine states, metadata), the keys set and deleted.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from routilux.exceptions import DeserializationError


__all__ = [
    "APPENDED",
    "JOB_STATE_DELTA_FORMAT",
    "KEYED",
    "apply_delta",
    "delta_between",
    "is_delta",
]

JOB_STATE_DELTA_FORMAT = "routilux.job_state_delta"
"""Format name of a checkpoint delta."""

_VERSION = 1

APPENDED = ("execution_history", "shared_log", "output_log", "pause_points", "errors")
"""The parts of a job document that only grow, written as what was appended."""

KEYED = ("shared_data", "routine_states", "metadata")
"""The dict parts of a job document, written as the keys set and deleted."""


def is_delta(document: Any) -> bool:
    """
    Tell whether ``document`` is a checkpoint delta (else a whole job document).
    """
    return isinstance(document, Mapping) and document.get("format") == JOB_STATE_DELTA_FORMAT


def _count(document: Mapping[str, Any], part: str) -> int:
    # Items ever appended to a growing part: the history counts its dropped records too.
    items = document.get(part) or []
    if part == "execution_history":
        return len(items) + int(document.get("history_dropped") or 0)
    return len(items)


def delta_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the delta that turns job document ``old`` into ``new`` (both ``routilux.job_state``
    documents of one job): for tests and tools; the engine writes its deltas from what it
    tracked, without building whole documents.
    """
    delta: dict[str, Any] = {
        "format": JOB_STATE_DELTA_FORMAT,
        "version": _VERSION,
        "base_seq": old.get("checkpoint_seq", 0),
        "checkpoint_seq": new.get("checkpoint_seq", 0),
        "set": {},
        "append": {},
        "keys": {},
    }
    for part in APPENDED:
        before, after = list(old.get(part) or []), list(new.get(part) or [])
        start = _count(old, part)
        grown = _count(new, part) - start
        kept = len(after) - grown
        if 0 <= grown and 0 <= kept <= len(before) and after[:kept] == before[len(before) - kept :]:
            if grown:
                delta["append"][part] = {"at": start, "items": after[kept:]}
        else:
            delta["set"][part] = after
    for part in KEYED:
        was: dict[str, Any] = dict(old.get(part) or {})
        now: dict[str, Any] = dict(new.get(part) or {})
        changed = {k: v for k, v in now.items() if k not in was or was[k] != v}
        deleted = [k for k in was if k not in now]
        if changed or deleted:
            delta["keys"][part] = {"set": changed, "delete": deleted}
    for key, value in new.items():
        if key in APPENDED or key in KEYED or key in ("format", "version"):
            continue
        if old.get(key, _MISSING) != value:
            delta["set"][key] = value
    return delta


_MISSING = object()


def _bad(reason: str, path: str) -> DeserializationError:
    return DeserializationError(reason, path=path)


def apply_delta(document: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return a new job document: ``document`` (the job at the delta's ``base_seq``) with
    ``delta`` applied. Neither argument is changed.

    Raises:
        DeserializationError: The delta is malformed, or does not follow ``document`` (its
            base is another checkpoint, or an appended part has a gap).
    """
    if not is_delta(delta):
        raise _bad(f"expected a {JOB_STATE_DELTA_FORMAT} document", "format")
    if delta.get("version") != _VERSION:
        raise _bad(f"unsupported delta version {delta.get('version')!r}", "version")
    base = document.get("checkpoint_seq", 0)
    if delta.get("base_seq") != base:
        msg = f"the delta follows checkpoint {delta.get('base_seq')!r}, not {base!r}"
        raise _bad(msg, "base_seq")
    out = copy.deepcopy(dict(document))
    for key, value in _mapping(delta, "set").items():
        out[key] = copy.deepcopy(value)
    for part, change in _mapping(delta, "append").items():
        path = f"append.{part}"
        if part not in APPENDED or not isinstance(change, Mapping):
            raise _bad("not a part that grows", path)
        items = change.get("items")
        if not isinstance(items, list) or change.get("at") != _count(document, part):
            msg = (
                f"expected items appended at {_count(document, part)}, got at {change.get('at')!r}"
            )
            raise _bad(msg, path)
        out[part] = [*out.get(part, []), *copy.deepcopy(items)]
    limit = out.get("history_limit")
    history = out.get("execution_history") or []
    if isinstance(limit, int) and limit > 0 and len(history) > limit:
        out["execution_history"] = history[-limit:]
    for part, change in _mapping(delta, "keys").items():
        path = f"keys.{part}"
        if part not in KEYED or not isinstance(change, Mapping):
            raise _bad("not a dict part", path)
        merged = dict(out.get(part) or {})
        for key in change.get("delete") or []:
            merged.pop(key, None)
        merged.update(copy.deepcopy(dict(change.get("set") or {})))
        out[part] = merged
    out["checkpoint_seq"] = delta.get("checkpoint_seq")
    return out


def _mapping(delta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = delta.get(key) or {}
    if not isinstance(value, Mapping):
        raise _bad("expected an object (dict)", key)
    return value

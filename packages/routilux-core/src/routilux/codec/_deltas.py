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
* ``keys``: for the dicts (shared data, routine states, metadata), the keys set and deleted;
* ``queue``: for the lists of work that is taken from the front and added at the back (the
  pending tasks, the deferred events, the failed tasks), the runs of items kept
  (``keep``, ``[start, end]`` pairs) and the items added after them (``items``): a job
  with a long queue writes what moved, not the queue.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from routilux.exceptions import DeserializationError


__all__ = [
    "APPENDED",
    "JOB_STATE_DELTA_FORMAT",
    "KEYED",
    "QUEUED",
    "VERSION",
    "apply_delta",
    "apply_deltas",
    "delta_between",
    "is_delta",
    "queue_change",
]

JOB_STATE_DELTA_FORMAT = "routilux.job_state_delta"
"""Format name of a checkpoint delta."""

VERSION = 1
"""The version of the delta format this routilux writes and reads."""

APPENDED = ("execution_history", "shared_log", "output_log", "pause_points", "errors")
"""The parts of a job document that only grow, written as what was appended."""

KEYED = ("shared_data", "routine_states", "metadata")
"""The dict parts of a job document, written as the keys set and deleted."""

QUEUED = ("pending_tasks", "deferred_events", "failed_tasks")
"""The work lists of a job document, written as the items dropped at the front and added."""


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


def queue_change(was: list[Any], now: list[Any]) -> dict[str, Any] | None:
    """
    How work list ``was`` became ``now``: ``{"keep": [[start, end], ...], "items": [...]}``,
    the runs of ``was`` kept (in order) and the items added after them; ``None`` when
    nothing changed. The longest start of ``now`` that ``was`` holds in order is kept:
    work taken from anywhere in the list and added at its end moves only what moved.
    """
    keep: list[list[int]] = []
    i = matched = 0
    for item in now:
        while i < len(was) and was[i] != item:
            i += 1
        if i == len(was):
            break
        if keep and keep[-1][1] == i:
            keep[-1][1] = i + 1
        else:
            keep.append([i, i + 1])
        i += 1
        matched += 1
    if matched == len(was) == len(now):
        return None
    return {"keep": keep, "items": now[matched:]}


def delta_between(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return the delta that turns job document ``old`` into ``new`` (both ``routilux.job_state``
    documents of one job): for tests and tools; the engine writes its deltas from what it
    tracked, without building whole documents.
    """
    delta: dict[str, Any] = {
        "format": JOB_STATE_DELTA_FORMAT,
        "version": VERSION,
        "base_seq": old.get("checkpoint_seq", 0),
        "checkpoint_seq": new.get("checkpoint_seq", 0),
        "set": {},
        "append": {},
        "keys": {},
        "queue": {},
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
        before = old.get(key, _MISSING)
        if key in QUEUED and isinstance(before, list) and isinstance(value, list):
            change = queue_change(before, value)
            if change is not None:
                delta["queue"][key] = change
        elif before != value:
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
    return apply_deltas(copy.deepcopy(dict(document)), [copy.deepcopy(dict(delta))])


def apply_deltas(document: dict[str, Any], deltas: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """
    Apply ``deltas``, in order, to ``document`` itself and return it: how a store rebuilds
    a job from its last whole checkpoint and the deltas after it (both decoded for the
    purpose, so nothing is copied). The values of the deltas become part of the document.

    Raises:
        DeserializationError: As :func:`apply_delta`, for the first delta that does not
            apply; ``document`` may be partly changed then.
    """
    for delta in deltas:
        _apply_into(document, delta)
    return document


def _apply_into(out: dict[str, Any], delta: Mapping[str, Any]) -> None:
    if not is_delta(delta):
        raise _bad(f"expected a {JOB_STATE_DELTA_FORMAT} document", "format")
    if delta.get("version") != VERSION:
        raise _bad(f"unsupported delta version {delta.get('version')!r}", "version")
    base = out.get("checkpoint_seq", 0)
    if delta.get("base_seq") != base:
        msg = f"the delta follows checkpoint {delta.get('base_seq')!r}, not {base!r}"
        raise _bad(msg, "base_seq")
    appended = _mapping(delta, "append")
    counts = {part: _count(out, part) for part in appended}
    out.update(_mapping(delta, "set"))
    for part, change in appended.items():
        path = f"append.{part}"
        if part not in APPENDED or not isinstance(change, Mapping):
            raise _bad("not a part that grows", path)
        items = change.get("items")
        if not isinstance(items, list) or change.get("at") != counts[part]:
            msg = f"expected items appended at {counts[part]}, got at {change.get('at')!r}"
            raise _bad(msg, path)
        current = out.get(part)
        if isinstance(current, list):
            current.extend(items)
        else:
            out[part] = list(items)
    limit = out.get("history_limit")
    history = out.get("execution_history")
    if isinstance(limit, int) and limit > 0 and isinstance(history, list) and len(history) > limit:
        del history[: len(history) - limit]
    for part, change in _mapping(delta, "keys").items():
        path = f"keys.{part}"
        if part not in KEYED or not isinstance(change, Mapping):
            raise _bad("not a dict part", path)
        merged = out.get(part)
        if not isinstance(merged, dict):
            merged = out[part] = dict(merged or {})
        for key in change.get("delete") or []:
            merged.pop(key, None)
        merged.update(change.get("set") or {})
    for part, change in _mapping(delta, "queue").items():
        path = f"queue.{part}"
        work = out.get(part)
        if part not in QUEUED or not isinstance(change, Mapping) or not isinstance(work, list):
            raise _bad("not a work list", path)
        keep, items = change.get("keep"), change.get("items")
        if not isinstance(keep, list) or not isinstance(items, list):
            raise _bad("expected keep and items lists", path)
        kept: list[Any] = []
        for run in keep:
            if not (isinstance(run, list) and len(run) == 2 and all(type(x) is int for x in run)):
                raise _bad(f"expected [start, end] pairs in keep, got {run!r}", path)
            if not 0 <= run[0] < run[1] <= len(work):
                raise _bad(f"run {run!r} is outside the {len(work)} items", path)
            kept.extend(work[run[0] : run[1]])
        work[:] = kept + items
    out["checkpoint_seq"] = delta.get("checkpoint_seq")


def _mapping(delta: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = delta.get(key) or {}
    if not isinstance(value, Mapping):
        raise _bad("expected an object (dict)", key)
    return value

"""
Checkpoint deltas of a live job: what changed since the job's last accepted checkpoint,
computed from the job itself at a cost that does not grow with its history.

A :class:`DeltaBase` remembers what that checkpoint held: how many items each growing part
had (and its last item, to tell growth from a rewrite) and every other part as written.
:func:`job_delta` dumps only the new items of the growing parts and compares the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from routilux.codec._deltas import (
    APPENDED,
    JOB_STATE_DELTA_FORMAT,
    KEYED,
    QUEUED,
    VERSION,
    queue_change,
)
from routilux.codec._job_states import dump_parts


if TYPE_CHECKING:
    from routilux.model._job_state import JobState

__all__ = ["DeltaBase", "job_delta"]

_NOT_COMPARED = frozenset(("format", "version", "checkpoint_seq", *APPENDED))


class DeltaBase:
    """
    What a job's last accepted checkpoint held, to write the next one as a delta.

    Args:
        seq: The checkpoint's sequence number.
        counts: Per growing part, the items ever appended (the history counts its dropped
            records too).
        lasts: Per growing part, its last item as written (absent when the part was empty).
        values: Every other part as written.
        containers: The job's growing containers then (see :func:`containers_of`): one
            that was replaced since, or a history changed other than by appending, is
            written whole.
    """

    __slots__ = ("containers", "counts", "lasts", "seq", "values")

    def __init__(
        self,
        seq: int,
        counts: dict[str, int],
        lasts: dict[str, Any],
        values: dict[str, Any],
        containers: dict[str, Any] | None = None,
    ) -> None:
        self.seq = seq
        self.counts = counts
        self.lasts = lasts
        self.values = values
        self.containers = containers or {}

    @classmethod
    def of_document(cls, document: Mapping[str, Any], js: JobState) -> DeltaBase:
        """
        The base that a whole job document (``routilux.job_state``, as written) of ``js``
        makes, with the lock of ``js`` held: ``js`` must hold what the document says (it
        was just written from it, or loaded from it). The document's values are kept, not
        copied: it must not change afterwards.
        """
        counts: dict[str, int] = {}
        lasts: dict[str, Any] = {}
        for part in APPENDED:
            items = document.get(part) or []
            counts[part] = len(items)
            if items:
                lasts[part] = items[-1]
        counts["execution_history"] += int(document.get("history_dropped") or 0)
        values = {k: v for k, v in document.items() if k not in _NOT_COMPARED}
        seq = document.get("checkpoint_seq")
        return cls(seq if type(seq) is int else 0, counts, lasts, values, containers_of(js))


def containers_of(js: JobState) -> dict[str, Any]:
    """
    With the job's lock held: the job's growing containers (the history with its count of
    changes other than appends), to tell later whether one was replaced or rewritten.
    """
    history = js.execution_history
    return {
        "execution_history": (history, history.rewrites),
        "shared_log": js.shared_log,
        "output_log": js.output_log,
        "pause_points": js.pause_points,
    }


def _same(was: Any, now: Any) -> bool:
    # The same container (for the history: the same object, changed only by appending).
    if isinstance(was, tuple):
        return bool(was[0] is now[0] and was[1] == now[1])
    return bool(was is now)


def _totals(js: JobState) -> dict[str, int]:
    # Per growing part of a live job, the items ever appended.
    return {
        "execution_history": len(js.execution_history) + js.history_dropped,
        "shared_log": len(js.shared_log),
        "output_log": len(js.output_log),
        "pause_points": len(js.pause_points),
        "errors": len(js.errors),
    }


def job_delta(
    base: DeltaBase, js: JobState, *, lenient: bool = False, pending: list[dict[str, Any]]
) -> tuple[dict[str, Any], DeltaBase]:
    """
    With the job's lock held: the delta (``routilux.job_state_delta``) that turns the
    checkpoint ``base`` describes into the job as it is now under its ``checkpoint_seq``,
    with ``pending`` (the queued activations, as data) after its pending tasks; and the
    base the new checkpoint makes once it is accepted.

    A growing part is written as what was appended when its item at the base's count is
    still the base's last (else whole); the other parts when they differ from the base's
    (the dicts of ``KEYED`` key by key).

    Raises:
        SerializationError: As ``dump_job_state``.
    """
    totals = _totals(js)
    now = containers_of(js)
    dropped = js.history_dropped
    # Dump each growing part from the base's last item on (kept to check that it is the
    # same item: the part grew rather than being rewritten).
    starts = {}
    for part in APPENDED:
        local = base.counts[part] - 1 - (dropped if part == "execution_history" else 0)
        starts[part] = max(local, 0)
    parts = dump_parts(js, lenient=lenient, starts=starts)
    parts["pending_tasks"] = [*parts["pending_tasks"], *pending]
    seq = parts.pop("checkpoint_seq")
    changes: dict[str, Any] = {}
    appended: dict[str, Any] = {}
    keyed: dict[str, Any] = {}
    queued: dict[str, Any] = {}
    counts: dict[str, int] = {}
    lasts: dict[str, Any] = {}
    rewritten: list[str] = []
    for part in APPENDED:
        items = parts.pop(part)
        before = base.counts[part]
        local = before - 1 - (dropped if part == "execution_history" else 0)
        grew = totals[part] - before
        counts[part] = totals[part]
        if part in now and not _same(base.containers.get(part), now[part]):
            rewritten.append(part)
            continue
        if before == 0 and grew == len(items):
            new = items
        elif local >= 0 and items and items[0] == base.lasts.get(part) and grew == len(items) - 1:
            new = items[1:]
        else:
            rewritten.append(part)
            continue
        if new:
            appended[part] = {"at": before, "items": new}
            lasts[part] = new[-1]
        elif part in base.lasts:
            lasts[part] = base.lasts[part]
    if rewritten:
        # Not grown from the base (replaced, cut, or its base item dropped): written whole.
        whole = dump_parts(js, lenient=lenient)
        for part in rewritten:
            changes[part] = whole[part]
            if whole[part]:
                lasts[part] = whole[part][-1]
    for key, value in parts.items():
        was = base.values.get(key, _MISSING)
        if key in KEYED and isinstance(value, dict) and isinstance(was, dict):
            changed = {k: v for k, v in value.items() if k not in was or was[k] != v}
            deleted = [k for k in was if k not in value]
            if changed or deleted:
                keyed[key] = {"set": changed, "delete": deleted}
        elif key in QUEUED and isinstance(value, list) and isinstance(was, list):
            moved = queue_change(was, value)
            if moved is not None:
                queued[key] = moved
        elif was != value or key == "status":  # a log row shows every checkpoint's status
            changes[key] = value
    delta = {
        "format": JOB_STATE_DELTA_FORMAT,
        "version": VERSION,
        "base_seq": base.seq,
        "checkpoint_seq": seq,
        "set": changes,
        "append": appended,
        "keys": keyed,
        "queue": queued,
    }
    return delta, DeltaBase(seq, counts, lasts, parts, now)


_MISSING = object()

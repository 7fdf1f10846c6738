"""
What a run books of each activation: routine state, tracker record, debug log and hooks.

A routine's counters live in the run (``JobRun.stats``) and are written to its routine
state at settle points (finish, pause, checkpoint, cancel); anything but a success is
written at once, since it says what went wrong.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from routilux._util._clock import iso_of
from routilux.model._records import Given


if TYPE_CHECKING:
    from routilux.engine._activation import Activation
    from routilux.engine._run import JobRun
    from routilux.model._connection import Connection
    from routilux.model._definition import FlowDefinition
    from routilux.model._event import Event
    from routilux.model._slot import Slot

__all__ = [
    "Route",
    "begin",
    "ended",
    "ended_locked",
    "flush_locked",
    "interrupted",
    "route",
    "succeeded",
]

Route = tuple[
    "str | None", "list[tuple[str | None, Slot, Connection | None]]", "str | Given | None", Given
]
"""Where an event goes in a job: its source routine id, its targets (flow routine id, slot,
connection), and the target its booking names: the first when no plugin hears of it, the
second (a ``Given``: they hold its data too) when one does; the two are the same when a
target slot's merge function is given its data."""

_ERROR_KEYS = frozenset(("error", "error_type", "error_time"))
"""The keys of a routine state that report its last error."""


def route(flow: FlowDefinition, event: Event) -> Route:
    """
    Return the :data:`Route` of ``event`` in a job of ``flow``.
    """
    routine = event.routine
    source = flow.routine_id_of(routine) if routine is not None else None
    targets = flow.targets_of(event)
    given = Given(targets[0][0] if targets else None)
    for _, slot, _ in targets:
        if callable(slot.merge_strategy):
            return source, targets, given, given
    return source, targets, given.routine_id, given


def begin(run: JobRun, act: Activation) -> float:
    """
    Book the start of an activation (routine state, debug log, hook); return its start
    time. Shared by the sync and the async lane.
    """
    rid = act.routine_id
    t0 = time.time()
    _started(run, rid, t0)
    if run.debug:
        run.log.debug(
            "activation_started", routine_id=rid, slot=act.slot.name, attempt=act.attempt + 1
        )
    if run.hooks is not None:
        run.hooks.call(
            "routilux_activation_started",
            flow=run.flow,
            job_state=run.job_state,
            routine_id=rid,
            slot_name=act.slot.name,
            attempt=act.attempt + 1,
        )
    return t0


def _started(run: JobRun, rid: str | None, t0: float) -> None:
    # The first activation of a routine in this run: its counters start from what its
    # routine state says (a resumed job goes on counting), else from zero.
    if rid is None or rid in run.stats:
        return
    with run.lock:
        if rid in run.stats:
            return
        old = run.job_state.peek_routine_state(rid)
        if not isinstance(old, dict):
            old = {}
        count = old.get("activation_count")
        total = old.get("execution_time")
        start = old.get("start_time")
        if type(count) is int and isinstance(total, (int, float)) and type(start) is str:
            run.stats[rid] = [count, float(total), start, t0, "running", None, start]
        else:
            start = iso_of(t0)
            run.stats[rid] = [0, 0.0, start, t0, "running", None, t0]
        run.job_state.book_routine_state(rid, {"status": "running", "start_time": start})


def succeeded(run: JobRun, act: Activation, t0: float) -> None:
    """
    Book an activation that succeeded (after retries, its routine state keeps
    ``retry_count``).
    """
    extra = {"retry_count": act.attempt} if act.attempt else None
    elapsed = ended(run, act.routine_id, t0, "completed", extra)
    if act.entry and act.attempt:
        run.entry_retried = True
    if run.debug:
        run.log.debug(
            "activation_finished",
            routine_id=act.routine_id,
            slot=act.slot.name,
            duration=elapsed,
        )
    if run.hooks is not None:
        run.hooks.call(
            "routilux_activation_finished",
            flow=run.flow,
            job_state=run.job_state,
            routine_id=act.routine_id,
            slot_name=act.slot.name,
            duration=elapsed,
        )


def interrupted(
    run: JobRun, act: Activation, t0: float, exc: BaseException, requeued: bool
) -> None:
    """
    Book an activation a pause (``requeued``: it runs again on resume) or a cancel of the
    job stopped (a coroutine activation, whose handler saw ``CancelledError``).
    """
    rid = act.routine_id
    if requeued:
        if rid is not None:
            run.job_state.book_routine_state(rid, {"status": "interrupted"})
    else:
        ended(run, rid, t0, "cancelled", None)
    if run.hooks is not None:
        run.hooks.call(
            "routilux_activation_failed",
            flow=run.flow,
            job_state=run.job_state,
            routine_id=rid,
            slot_name=act.slot.name,
            error=exc,
            strategy="requeue" if requeued else "cancel",
        )


def ended(
    run: JobRun,
    rid: str | None,
    t0: float,
    status: str,
    extra: dict[str, Any] | None,
    error: str | None = None,
) -> float:
    """
    Book one finished activation (see :func:`ended_locked`); return its duration.
    """
    t1 = time.time()
    with run.lock:
        ended_locked(run, rid, t0, t1, status, extra, error)
    return t1 - t0


def ended_locked(
    run: JobRun,
    rid: str | None,
    t0: float,
    t1: float,
    status: str,
    extra: dict[str, Any] | None,
    error: str | None = None,
) -> None:
    """
    With the lock held: book one activation of ``rid`` that ran from ``t0`` to ``t1`` and
    ended with ``status`` (``extra``: keys for its routine state; ``error``: the message
    of its error).
    """
    if rid is None:
        return
    stats = run.stats[rid]
    stats[0] += 1
    stats[1] += t1 - t0
    stats[3] = t1
    stats[4] = status
    if status == "completed" and stats[5] and _ERROR_KEYS.intersection(stats[5]):
        # A success after an error: the routine's state no longer reports that error
        # (the history keeps it); the retry count stays.
        stale = {k: v for k, v in stats[5].items() if k in _ERROR_KEYS}
        stats[5] = {k: v for k, v in stats[5].items() if k not in _ERROR_KEYS}
        run.job_state.drop_routine_state_keys(rid, stale)
    if extra:
        stats[5] = {**(stats[5] or {}), **extra}
    if status == "completed":
        run.dirty.add(rid)
    else:
        run.dirty.discard(rid)
        _write_locked(run, rid, stats)
    run.tracker.record_activation(rid, t0, t1, status, error)


def _state_of(stats: list[Any]) -> dict[str, Any]:
    state = {
        "status": stats[4],
        "start_time": stats[2],
        "end_time": iso_of(stats[3]),
        "execution_time": stats[1],
        "activation_count": stats[0],
    }
    if stats[5]:
        state.update(stats[5])
    return state


def flush_locked(run: JobRun) -> None:
    """
    With the lock held: write the routine states of the activations booked since the
    last flush.
    """
    if run.dirty:
        stats = run.stats
        for rid in run.dirty:
            _write_locked(run, rid, stats[rid])
        run.dirty.clear()


def _write_locked(run: JobRun, rid: str, stats: list[Any]) -> None:
    # With the lock held: write the routine state of ``rid`` from its counters, and keep
    # the dict written with the start and end times it says (see JobRun.written).
    state = run.job_state.book_routine_state(rid, _state_of(stats))
    run.written[rid] = (state, stats[6], stats[3])

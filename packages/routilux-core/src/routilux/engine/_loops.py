"""
The loops that run a job's queue, and the step of one sync activation they share.

A pool worker runs :func:`work`, the caller of a blocking sequential ``execute``
:func:`drain`; both run a sync activation with :func:`run_activation`.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from routilux.engine import _async, _timeouts
from routilux.engine._booking import begin, ended_locked, flush_locked, succeeded
from routilux.engine._checkpoints import count_locked, deliver, now_locked, take_locked
from routilux.engine._errors import on_error
from routilux.engine._steps import crashed, finish_locked, poll_control_locked
from routilux.model._context import Frame, set_frame
from routilux.model._slot import merge, timeout_of


if TYPE_CHECKING:
    from routilux.engine._activation import Activation
    from routilux.engine._pool import WorkerPool
    from routilux.engine._run import JobRun

__all__ = ["coroutine_done_locked", "drain", "prepare", "run_activation", "work"]

_BUDGET = 64
"""Activations a worker runs for one job before it lets other waiting jobs go first."""


def work(run: JobRun) -> None:
    """
    Run the job's queued activations on the calling pool worker. An error of the engine's
    own path (its control, its checkpoints) fails the job (see ``_steps.crashed``).
    """
    try:
        _work(run)
    except Exception as exc:  # noqa: BLE001 - never strand the job: it fails
        crashed(run, exc)


def _work(run: JobRun) -> None:
    pool = run.host.pool()
    budget = _BUDGET
    cond = run.cond
    with run.lock:
        run.scheduled = False
        run.runners += 1
        try:
            while True:
                if run.finished or run.cancelled or run.paused:
                    break
                if run.checkpoint_due:
                    if run.in_flight:
                        break
                    now_locked(run)
                    continue
                if run.control is not None and poll_control_locked(run):
                    break
                if not run.queue:
                    if run.quiescent():
                        finish_locked(run)
                    break
                if run.sequential and run.in_flight:
                    break
                act = run.queue.popleft()
                run.in_flight += 1
                if act.slot.is_async:
                    # Coroutines go to the job's event loop; this worker goes on.
                    _async.spawn_locked(run, act)
                    continue
                push = run.want_push(reserve=False)
                if push:
                    run.scheduled = True
                _run_locked(run, act, pool if push else None)
                budget -= 1
                if budget == 0:
                    budget = _BUDGET
                    if run.queue and not run.scheduled and pool.has_waiting():
                        run.scheduled = True
                        cond.release()
                        try:
                            pool.push(run)
                        finally:
                            cond.acquire()
                        break
        finally:
            run.runners -= 1
            snapshot = None
            if run.in_flight == 0:
                flush_locked(run)
                snapshot = take_locked(run)
                cond.notify_all()
    deliver(run, snapshot)


def drain(run: JobRun) -> None:
    """
    Run the job on the calling thread until it finishes, pauses or is cancelled (the
    blocking sequential ``execute``). An error of the engine's own path fails the job.
    """
    try:
        _drain(run)
    except Exception as exc:  # noqa: BLE001 - never strand the job: it fails
        crashed(run, exc)


def _drain(run: JobRun) -> None:
    cond = run.cond
    with run.lock:
        run.drainer = True
        run.runners += 1
        try:
            while True:
                if run.finished or run.cancelled:
                    break
                if run.paused:
                    if run.in_flight == 0:
                        break
                    run.drainer_waiting = True
                    cond.wait()
                    run.drainer_waiting = False
                    continue
                if run.checkpoint_due and not run.in_flight:
                    now_locked(run)
                    continue
                if run.control is not None and poll_control_locked(run):
                    continue
                if run.queue and not run.in_flight:
                    act = run.queue.popleft()
                    run.in_flight += 1
                    if act.slot.is_async:
                        # It runs on the job's loop; wait for it below, as for any
                        # activation in flight (the job's order stays sequential).
                        _async.spawn_locked(run, act)
                        continue
                    _run_locked(run, act, None, True)
                    continue
                if run.quiescent():
                    finish_locked(run)
                    break
                run.drainer_waiting = True
                cond.wait()
                run.drainer_waiting = False
        finally:
            run.drainer = False
            run.runners -= 1
            if run.failed and run.quiescent():
                # A fatal error (KeyboardInterrupt...) is on its way up: finish first.
                finish_locked(run)
            if run.queue and not (run.paused or run.cancelled or run.failed):
                run.scheduled = True
                handoff = True
            else:
                handoff = False
            flush_locked(run)
            snapshot = take_locked(run)
            cond.notify_all()
    deliver(run, snapshot)
    if handoff:
        run.hand_off()


def _run_locked(
    run: JobRun, act: Activation, push: WorkerPool | None, reraise_fatal: bool = False
) -> None:
    # Called by a runner with the lock held and ``act`` counted in flight: release the
    # lock (hand the job to ``push`` first, when given), run the activation in a copy of
    # the job's context, take the lock again and book the outcome.
    lock = run.lock
    t0: float | None = None
    t1 = 0.0
    lock.release()
    try:
        if push is not None:
            push.push(run)
        t0 = run.context.copy().run(run_activation, run, act, reraise_fatal)
        t1 = time.time()
    finally:
        lock.acquire()
        run.in_flight -= 1
        if t0 is not None:
            ended_locked(run, act.routine_id, t0, t1, "completed", None)
        if run.checkpoint_fn is not None:
            count_locked(run)
        if run.waiters:
            run.fire_waiters_locked()


def run_activation(run: JobRun, act: Activation, reraise_fatal: bool = False) -> float | None:
    """
    Run one activation of a sync handler on this thread, in the job's context (a copy the
    caller made): merge its data, call the handler, book the outcome. A plain success is
    left to the runner to book (it returns the start time); anything else is booked here
    (it returns ``None``). Never raises, except a fatal ``BaseException`` when
    ``reraise_fatal``. (Coroutine handlers go through the async lane.)
    """
    # The context is discarded afterwards: no reset.
    set_frame(Frame(run, act, threading.get_ident()))
    rid = act.routine_id
    slot = act.slot
    plain = run.plain
    t0 = time.time() if plain and (rid is None or rid in run.stats) else begin(run, act)
    try:
        merged = prepare(run, act)
        call = slot.caller
        if call is not None:
            timeout = timeout_of(slot)
            if timeout is not None:
                _timeouts.arm(run, act, timeout, t0)
            call(merged)
    except Exception as exc:  # noqa: BLE001 - every handler error goes to the error path
        if act.watch is None or _timeouts.settle(run, act):
            on_error(run, act, exc, t0)
        else:
            _timeouts.late(run, act, exc)
    except BaseException as exc:
        if act.watch is None or _timeouts.settle(run, act):
            on_error(run, act, exc, t0, fatal=True)
        else:
            _timeouts.late(run, act, exc)
        if reraise_fatal:
            raise
    else:
        if act.watch is not None and not _timeouts.settle(run, act):
            _timeouts.late(run, act, None)
            return None
        if plain and not act.attempt:
            return t0
        succeeded(run, act, t0)
    return None


def prepare(run: JobRun, act: Activation) -> Any:
    """
    Return the data the activation's handler gets: mapped by its connection and merged
    by its slot's strategy into the job's buffer (merge errors propagate to the error
    path). Shared by the sync and the async lane.
    """
    data = act.data
    conn = act.connection
    if conn is not None and conn.param_mapping:
        data = conn.apply_mapping(data)
    slot = act.slot
    strategy = slot.merge_strategy
    if strategy.__class__ is str and strategy != "append":
        return data  # the slot's caller copies it if the handler gets the dict itself
    key = (act.routine_id, slot.name)
    with run.lock:
        buffer = run.buffers.get(key)
        new_buffer, merged = merge(strategy, {} if buffer is None else buffer, data)
        run.buffers[key] = new_buffer
    return merged


def coroutine_done_locked(run: JobRun, counted: bool) -> bool:
    """
    With the lock held: a coroutine activation of the job is over (``counted``: its
    handler was called). Book what a runner books after a sync handler, and tell whether
    the job is to be handed to the pool now (it is then marked scheduled): no runner
    takes its work, and it has work, a checkpoint due, or its finish to do.
    """
    run.in_flight -= 1
    if counted:
        count_locked(run)
    if run.in_flight == 0:
        flush_locked(run)
    if run.waiters:
        run.fire_waiters_locked()
    run.cond.notify_all()
    if run.drainer or run.runners or run.scheduled or run.finished or run.cancelled:
        return False
    idle = run.in_flight == 0
    if run.paused:
        push = idle and run.checkpoint_due
    elif run.queue:
        push = idle or not run.sequential
    else:
        push = idle and (run.checkpoint_due or run.quiescent())
    if push:
        run.scheduled = True
    return push

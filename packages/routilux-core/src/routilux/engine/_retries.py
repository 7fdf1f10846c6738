"""
Retries of a job's activations, each waiting on a timer and never in a worker.

A retry waits on the flow's retry timer, or on the event loop of a coroutine activation,
and counts as the job's outstanding work until it is queued again.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from typing import TYPE_CHECKING

import attrs

from routilux.engine._activation import as_pending
from routilux.engine._async import running_loop


if TYPE_CHECKING:
    import asyncio

    from routilux.engine._activation import Activation
    from routilux.engine._run import JobRun

__all__ = ["drop_timers", "retry_later"]

_loop_handles = itertools.count(1)


def retry_later(run: JobRun, act: Activation, delay: float) -> None:
    """
    Run ``act`` again, as its next attempt, after ``delay`` seconds. A job that is
    cancelled drops it; a failed job keeps it in its failed tasks, a paused one in its
    pending tasks.
    """
    again = attrs.evolve(act, attempt=act.attempt + 1)
    with run.lock:
        if run.cancelled:
            return
        if run.failed:
            run.job_state.keep_failed_tasks([as_pending(again)])
            return
        if run.paused:
            run.job_state.add_pending_tasks([as_pending(again)])
            return
        loop = running_loop() if act.slot.is_async else None
        if loop is not None:
            # A coroutine's retry waits on its own loop, not on the flow's timer thread;
            # its handle is negative, so it never collides with the flow timer's.
            handle = -next(_loop_handles)
            run.loop_timers[handle] = (loop, loop.call_later(delay, _retry_due, run, handle))
        else:
            handle = run.host.timer().call_later(delay, functools.partial(_retry_due, run))
        run.timers[handle] = again


def _retry_due(run: JobRun, handle: int) -> None:
    # On the timer's thread or loop: queue the retry.
    with run.lock:
        act = run.timers.pop(handle, None)
        if handle < 0:
            run.loop_timers.pop(handle, None)
        if act is not None:
            # Outstanding until queued: the job must not finish in between.
            run.holds += 1
    if act is not None:
        try:
            run.enqueue([act])
        finally:
            run.release_hold()


def drop_timers(run: JobRun) -> list[Activation]:
    """
    With the lock held: cancel the job's waiting retries; return their activations.
    """
    timer = run.host.started_timer()
    dropped = list(run.timers.values())
    for handle in run.timers:
        if handle < 0:
            _cancel_loop_timer(run.loop_timers.pop(handle, None))
        elif timer is not None:
            timer.cancel(handle)
    run.timers.clear()
    return dropped


def _cancel_loop_timer(
    entry: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None,
) -> None:
    # Cancel a retry timer of an event loop from any thread (a no-op for None).
    if entry is None:
        return
    loop, handle = entry
    with contextlib.suppress(RuntimeError):  # a closed loop: the timer is gone with it
        loop.call_soon_threadsafe(handle.cancel)

"""
Retries of a job's activations, each waiting on the flow's timer and never in a worker.

A retry waits on the flow's timer (:mod:`routilux.engine._clock`: the one timer of
back-offs, timeouts and deadlines), for coroutine activations too, and counts as the
job's outstanding work until it is queued again.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import attrs

from routilux.engine._activation import as_pending


if TYPE_CHECKING:
    from routilux.engine._activation import Activation
    from routilux.engine._run import JobRun

__all__ = ["drop_timers", "retry_later"]


def retry_later(run: JobRun, act: Activation, delay: float) -> None:
    """
    Run ``act`` again, as its next attempt, after ``delay`` seconds. A job that is
    cancelled drops it; a failed job keeps it in its failed tasks, a paused one in its
    pending tasks.
    """
    again = attrs.evolve(act, attempt=act.attempt + 1, watch=None)
    with run.lock:
        if run.cancelled:
            return
        if run.failed:
            run.job_state.keep_failed_tasks([as_pending(again)])
            return
        if run.paused:
            run.job_state.add_pending_tasks([as_pending(again)])
            return
        handle = run.host.timer().call_later(delay, functools.partial(_retry_due, run))
        run.timers[handle] = again


def _retry_due(run: JobRun, handle: int) -> None:
    # On the timer's thread: queue the retry.
    with run.lock:
        act = run.timers.pop(handle, None)
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
    if timer is not None:
        for handle in run.timers:
            timer.cancel(handle)
    run.timers.clear()
    return dropped

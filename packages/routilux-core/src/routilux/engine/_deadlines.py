"""
Job deadlines, on the flow's timer (the one of retry back-offs and slot timeouts too).

A job's deadline (``deadline=`` of ``Flow.execute``, ``submit``, ``aexecute``, ``resume``
and ``retry``: seconds from that call) fails the job with
:class:`~routilux.exceptions.JobDeadlineExceeded` when it passes: its queued work, its
waiting retries and its running coroutines (cancelled) are kept in its failed tasks, so
that ``Flow.retry`` goes on with them. Running sync handlers cannot be stopped: what they
emit from then on is kept in the failed tasks too, and the job settles when they return.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from routilux.engine import _async
from routilux.engine._activation import as_pending
from routilux.engine._checkpoints import record_engine_error_locked
from routilux.exceptions import JobDeadlineExceeded


if TYPE_CHECKING:
    from routilux.engine._run import JobRun

__all__ = ["arm_deadline", "disarm_deadline_locked"]


def arm_deadline(run: JobRun, seconds: float | None) -> None:
    """
    Fail the job with ``JobDeadlineExceeded`` if it runs ``seconds`` from now (replacing
    a deadline it had); ``None`` gives it none.
    """
    if seconds is None:
        return
    with run.lock:
        disarm_deadline_locked(run)
        if run.finished or run.cancelled or run.failed:
            return
        due = functools.partial(_deadline_due, run, seconds)
        run.deadline = run.host.timer().call_later(seconds, due)


def disarm_deadline_locked(run: JobRun) -> None:
    """
    With the lock held: drop the job's deadline (it finished, failed, paused or was
    cancelled).
    """
    handle, run.deadline = run.deadline, None
    if handle is not None:
        timer = run.host.started_timer()
        if timer is not None:
            timer.cancel(handle)


def _deadline_due(run: JobRun, seconds: float, handle: int) -> None:
    # On the timer: the job's deadline passed.
    js = run.job_state
    msg = f"job {js.job_id!r} ran past its deadline of {seconds:g} s"
    with run.lock:
        if run.deadline != handle:
            return
        run.deadline = None
        if run.finished or run.cancelled or run.failed or run.paused:
            return
        # Running coroutines are cancelled; they are kept, first, for a retry.
        stopped = [as_pending(a) for a in _async.interrupt_locked(run, requeue=True)]
        js.keep_failed_tasks(stopped)
        exc = JobDeadlineExceeded(msg, job_id=js.job_id, deadline=seconds)
        record_engine_error_locked(run, exc, "")
    js.record_execution(
        js.current_routine_id or "", "deadline_exceeded", {"deadline": seconds, "error": msg}
    )
    run.log.error("job_deadline_exceeded", deadline=seconds)
    run.fail()

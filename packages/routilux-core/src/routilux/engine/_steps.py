"""
The lifecycle steps of a job's run: pause, cancel, resume or retry, fail, finish.

Each status change goes through the lifecycle table (:mod:`routilux.lifecycle`); remote
control requests are applied here too.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

from routilux._util._log import repr_of
from routilux.engine import _async
from routilux.engine._activation import as_pending
from routilux.engine._booking import flush_locked
from routilux.engine._checkpoints import (
    deliver,
    record_engine_error_locked,
    snapshot_locked,
    take_locked,
)
from routilux.engine._deadlines import disarm_deadline_locked
from routilux.engine._released import release_locked
from routilux.engine._retries import drop_timers
from routilux.exceptions import (
    EventNotFoundError,
    JobStateError,
    RoutiluxWarning,
    RoutineNotFoundError,
    SlotNotFoundError,
)
from routilux.model import _lifecycle as lifecycle
from routilux.model._context import current_frame
from routilux.model._lifecycle import Action
from routilux.model._loop import on_event_loop


if TYPE_CHECKING:
    from routilux.engine._run import JobRun
    from routilux.model._definition import FlowDefinition
    from routilux.model._job_state import JobState
    from routilux.model._routine import Routine

__all__ = [
    "cancel",
    "check_names",
    "crashed",
    "emit_deferred",
    "fail",
    "finish_locked",
    "pause",
    "poll_control_locked",
    "reopen",
]


def fail(run: JobRun, failed: dict[str, Any] | None = None) -> None:
    """
    Fail the job (also a paused one): nothing new of it starts; running handlers finish.
    The failed activation (``failed``, as ``as_failed`` data), what was queued, waiting
    for a retry or pending, and what running handlers emit from now on are kept in
    ``job_state.failed_tasks`` for ``Flow.retry``. A cancelled job stays cancelled.
    """
    with run.lock:
        if run.cancelled:
            return
        kept = [] if failed is None else [failed]
        kept.extend(as_pending(a) for a in run.queue)
        kept.extend(as_pending(a) for a in drop_timers(run))
        disarm_deadline_locked(run)
        run.queue.clear()
        run.failed = True
        # A pause under way gives way: the runner that sees the job quiescent finishes it.
        run.paused = False
        run.job_state.keep_failed_tasks(kept)
        lifecycle.transition(run.job_state, Action.FAIL)
        run.cond.notify_all()
        if run.waiters:
            run.fire_waiters_locked()


def crashed(run: JobRun, exc: Exception) -> None:
    """
    The engine's own path raised ``exc`` while running the job (its control or its store
    failed, or a bug): fail the job with an error naming it, finish it when nothing of it
    runs and write its last checkpoint, rather than leave it and its waiters waiting. A
    control that raised is not read again.
    """
    run.log.error("job_crashed", error=repr_of(exc), exc_info=exc)
    with run.lock:
        run.control = None
        if not (run.finished or run.cancelled):
            record_engine_error_locked(run, exc, "the engine failed: ")
    fail(run)
    with run.lock:
        if run.quiescent() and not (run.runners or run.drainer):
            finish_locked(run)
        try:
            snapshot = take_locked(run)
        except Exception as again:  # no checkpoint can be taken: none is written
            run.log.error("checkpoint_failed", error=repr_of(again), exc_info=again)
            run.checkpoint_fn = None
            run.checkpoint_due = False
            snapshot = None
        run.cond.notify_all()
        if run.waiters:
            run.fire_waiters_locked()
    try:
        deliver(run, snapshot)
    finally:
        with run.lock:  # also when delivering failed: the waiters look again
            run.cond.notify_all()


def finish_locked(run: JobRun) -> None:
    """
    With the lock held, once the job is quiescent: finish it (``completed``, or ``failed``
    after a STOP error); the caller delivers the final checkpoint after releasing the lock.
    """
    js = run.job_state
    run.finished = True
    disarm_deadline_locked(run)
    run.checkpoint_due = run.checkpoint_fn is not None
    flush_locked(run)
    if run.failed:
        lifecycle.transition(js, Action.FAIL)
    else:
        entry = js.current_routine_id
        if entry is not None:
            data: dict[str, Any] = {"execution_time": time.perf_counter() - run.started}
            if run.entry_retried:
                data["retried"] = True
            js.record_own(entry, "completed", data)
        lifecycle.transition(js, Action.FINISH)
    run.cond.notify_all()
    if run.waiters:
        run.fire_waiters_locked()
    run.log.debug("job_finished", status=js.status)
    run.host.job_settled(run)
    release_locked(run)
    if run.hooks is not None:
        run.hooks.call("routilux_job_finished", flow=run.flow, job_state=js)


def poll_control_locked(run: JobRun) -> bool:
    """
    With the lock held: apply a remote pause or cancel request; ``True`` when one was.
    """
    request = run.control.poll() if run.control is not None else None
    if request == "pause":
        run.pause("pause requested", None)
        return True
    if request == "cancel":
        run.cancel("cancel requested")
        return True
    return False


def pause(run: JobRun, reason: str, checkpoint: dict[str, Any] | None) -> None:
    """
    See :meth:`JobRun.pause <routilux.engine._run.JobRun.pause>`.
    """
    js = run.job_state
    with run.lock:
        live = _newer_run(run)
        if live is not None:
            return live.pause(reason, checkpoint)
        lifecycle.next_status(js.status, Action.PAUSE, job_id=js.job_id)
        run.paused = True
        # Running coroutines are cancelled and go back first: they came off the queue
        # before anything still in it (at least once: see docs/async.md).
        moved = [as_pending(a) for a in _async.interrupt_locked(run, requeue=True)]
        moved.extend(as_pending(a) for a in run.queue)
        run.queue.clear()
        moved.extend(as_pending(a) for a in drop_timers(run))
        disarm_deadline_locked(run)
        js.add_pending_tasks(moved)
        flush_locked(run)
        js.record_pause(
            reason,
            checkpoint,
            pending_tasks_count=len(js.pending_tasks),
            active_tasks_count=run.in_flight,
            queue_size=len(moved),
        )
        run.checkpoint_due = run.checkpoint_fn is not None
        run.cond.notify_all()
        if run.waiters:
            run.fire_waiters_locked()
        frame = current_frame()
        inside = frame is not None and frame.run is run
        # On an event loop's thread, waiting could block the coroutines we wait for.
        if not inside and not on_event_loop():
            run.cond.wait_for(lambda: run.in_flight == 0 or not run.paused)
        snapshot = take_locked(run) if run.paused else None
        # The flow counts the job as running until it settles (a handler that paused
        # its own job may still run, and a STOP error of it fails the job).
        run.waiters.append(
            (lambda: not run.paused or run.is_settled(), lambda: _settled_while_paused(run))
        )
        run.fire_waiters_locked()
    deliver(run, snapshot)


def _settled_while_paused(run: JobRun) -> None:
    # With the lock held (a waiter callback): a paused job with nothing running no longer
    # keeps flow.wait_for_completion() waiting (a job that failed instead is released by
    # its finish).
    if run.paused:
        run.host.job_settled(run)


def cancel(run: JobRun, reason: str) -> None:
    """
    See :meth:`JobRun.cancel <routilux.engine._run.JobRun.cancel>`.
    """
    with run.lock:
        js = run.job_state
        live = _newer_run(run)
        if live is not None:
            return live.cancel(reason)
        if lifecycle.next_status(js.status, Action.CANCEL, job_id=js.job_id) == js.status:
            return  # cancelled already
        run.cancelled = True
        run.queue.clear()
        js.drop_pending_tasks()
        drop_timers(run)
        disarm_deadline_locked(run)
        _async.interrupt_locked(run, requeue=False)
        flush_locked(run)
        js.record_cancel(reason)
        run.finished = True
        snapshot = None
        if run.checkpoint_fn is not None:
            run.delivering += 1
            snapshot = snapshot_locked(run)
        run.cond.notify_all()
        if run.waiters:
            run.fire_waiters_locked()
    run.host.job_settled(run)
    deliver(run, snapshot)
    if run.hooks is not None:
        run.hooks.call("routilux_job_finished", flow=run.flow, job_state=run.job_state)


def reopen(run: JobRun, action: Action) -> bool:
    """
    See :meth:`JobRun.reopen <routilux.engine._run.JobRun.reopen>`.
    """
    with run.lock:
        js = run.job_state
        lifecycle.next_status(js.status, action, job_id=js.job_id)
        if action is Action.RETRY and not run.finished:
            _wait_failed_run_locked(run)
        if not (run.paused or run.finished or run.cancelled):
            return False
        if js.run_state is not run:
            if _newer_run(run) is not None:
                return False
            # Released at finish while a resume held this run: attach it again (its
            # tracker books again).
            js.attach_run(run)
            run.tracker.thaw()
        lifecycle.transition(js, action)
        run.paused = run.cancelled = run.failed = run.finished = False
        run.abandoned = False  # a retry here after a checkpoint failed runs the job again
        run.holds += 1
        run.started = time.perf_counter()
        return True


def _newer_run(run: JobRun) -> JobRun | None:
    # With the lock held: the job's live run when this one finished and a resume gave the
    # job a new one (a stale reference to this run acts on that one), else None.
    live = run.job_state.run_state
    return live if live is not run and isinstance(live, type(run)) else None


def _wait_failed_run_locked(run: JobRun) -> None:
    # A retry of a failed job whose handlers still run waits for them (the failure
    # stopped everything else), unless it is one of them, or on an event loop.
    frame = current_frame()
    js = run.job_state
    if (frame is not None and frame.run is run) or on_event_loop():
        msg = (
            f"cannot retry job {js.job_id!r} from one of its own handlers or on an event "
            "loop while its failed run winds down (wait_for_completion() first)"
        )
        raise JobStateError(msg, job_id=js.job_id, status=js.status, action="retry")
    run.cond.wait_for(lambda: run.finished or not run.failed)


def check_names(flow: FlowDefinition, job_state: JobState, action: Action) -> None:
    """
    Check that every routine, slot and event ``job_state`` names (its entry, the tasks a
    resume or retry runs, its deferred events) is in ``flow``, before anything of the job
    changes.

    Raises:
        RoutineNotFoundError: A routine is not in the flow (``SlotNotFoundError``,
            ``EventNotFoundError`` likewise for a slot or an event).
    """
    where = f"of {job_state!r} not found in flow {flow.flow_id!r}"
    entry = job_state.current_routine_id
    if entry is not None and entry not in flow.routines:
        msg = f"Entry routine '{entry}' {where}"
        raise RoutineNotFoundError(msg, name=entry)
    tasks = job_state.failed_tasks if action is Action.RETRY else job_state.pending_tasks
    for task in tasks:
        rid, name = task.get("slot_routine_id"), task.get("slot_name")
        routine = _routine_named(flow, rid, f"a pending activation {where}")
        if not isinstance(name, str) or routine.get_slot(name) is None:
            msg = f"Slot {rid!r}.{name!r} of a pending activation {where}"
            raise SlotNotFoundError(msg, name=str(name))
    for item in job_state.deferred_events:
        rid, name = item.get("routine_id"), item.get("event_name")
        routine = _routine_named(flow, rid, f"a deferred event {where}")
        if not isinstance(name, str) or routine.get_event(name) is None:
            msg = f"Event {rid!r}.{name!r} of a deferred event {where}"
            raise EventNotFoundError(msg, name=str(name))


def _routine_named(flow: FlowDefinition, rid: Any, what: str) -> Routine:
    # The routine ``rid`` of the flow, which ``what`` names.
    routine = flow.routines.get(rid) if isinstance(rid, str) else None
    if routine is None:
        msg = f"Routine {rid!r} of {what}"
        raise RoutineNotFoundError(msg, name=str(rid))
    return routine


def emit_deferred(flow: FlowDefinition, item: dict[str, Any]) -> None:
    """
    Emit a deferred event of a job being resumed (its routine and event were checked by
    :func:`check_names`); an error is a warning, so that one bad event does not stop the
    resume.
    """
    rid, name = item["routine_id"], item["event_name"]
    event = flow.routines[rid].get_event(name)
    assert event is not None
    data = item.get("data") or {}
    try:
        event.emit(flow, **data)
    except Exception as exc:  # noqa: BLE001 - one bad deferred event must not stop resume
        msg = f"deferred event {rid!r}.{name!r} failed on resume: {repr_of(exc)}"
        warnings.warn(msg, RoutiluxWarning, stacklevel=4)

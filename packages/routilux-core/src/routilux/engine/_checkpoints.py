"""
Checkpoints of a job's run: when one is due, its snapshot, its delivery, unwritable data.

A snapshot is taken while no activation of the job runs, under the job's next checkpoint
sequence number, and handed to the checkpoint function without the lock. With
``checkpoint_deltas``, a snapshot taken while no other is being handed over is a delta
from the last one the function accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from routilux._util._log import repr_of
from routilux.codec._job_deltas import DeltaBase, job_delta
from routilux.codec._job_states import dump_job_state
from routilux.engine import _async
from routilux.engine._activation import as_pending
from routilux.engine._booking import flush_locked
from routilux.engine._clock import current_clock
from routilux.engine._released import release_locked
from routilux.engine._retries import drop_timers
from routilux.exceptions import SerializationError
from routilux.model import _lifecycle as lifecycle
from routilux.model._error_record import ErrorRecord
from routilux.model._job_changes import FINAL_STATUSES
from routilux.model._lifecycle import Action


if TYPE_CHECKING:
    from routilux.engine._run import JobRun

__all__ = [
    "Snapshot",
    "count_locked",
    "deliver",
    "now_locked",
    "record_engine_error_locked",
    "snapshot_locked",
    "take_locked",
]


class Snapshot:
    """
    A checkpoint to hand over: the document (a whole job, or a delta), and with
    ``checkpoint_deltas`` the base it makes once accepted.
    """

    __slots__ = ("base", "delta", "document")

    def __init__(self, document: dict[str, Any], base: DeltaBase | None, delta: bool) -> None:
        self.document = document
        self.base = base
        self.delta = delta


def count_locked(run: JobRun) -> None:
    """
    With the lock held: one more activation finished; is a checkpoint due (by count or
    by time)?
    """
    if run.checkpoint_fn is None:
        return
    if run.checkpoint_every:
        run.since_checkpoint += 1
        if run.since_checkpoint >= run.checkpoint_every:
            run.checkpoint_due = True
    interval = run.checkpoint_interval
    if interval and current_clock().monotonic() - run.last_checkpoint >= interval:
        run.checkpoint_due = True


def snapshot_locked(run: JobRun) -> Snapshot:
    """
    With the lock held: the job as a document, its queued activations (and waiting
    retries) as pending tasks, under the next checkpoint sequence number (a store keeps
    the newest); with ``checkpoint_deltas``, as a delta when the last checkpoint was
    accepted and no other is being handed over (this one counted in ``delivering``).
    Data that cannot be written fails the job; its snapshots are lenient from then on.
    """
    flush_locked(run)
    js = run.job_state
    js.checkpoint_seq += 1
    queued = [as_pending(a) for a in run.queue]
    queued.extend(as_pending(a) for a in run.timers.values())
    base = run.delta_base if run.checkpoint_deltas and run.delivering <= 1 else None
    try:
        if base is not None:
            data, following = job_delta(base, js, lenient=run.unwritable, pending=queued)
            return Snapshot(data, following, delta=True)
        data = dump_job_state(js, lenient=run.unwritable)
    except SerializationError as exc:
        _unwritable_locked(run, exc)
        data = dump_job_state(js, lenient=True)
    data["pending_tasks"] = list(data.get("pending_tasks") or []) + queued
    after = DeltaBase.of_document(data, js) if run.checkpoint_deltas else None
    return Snapshot(data, after, delta=False)


def _unwritable_locked(run: JobRun, exc: SerializationError) -> None:
    # The job's data cannot be written to its store (a set, NaN, an int too large...):
    # the job fails with an error naming the path, and its checkpoints from now on write
    # a string naming each such value in its place.
    run.unwritable = True
    run.log.error("checkpoint_unwritable", error=str(exc), path=exc.path)
    record_engine_error_locked(run, exc, "")
    run.fail()


def record_engine_error_locked(run: JobRun, exc: BaseException, where: str) -> None:
    """
    With the lock held: record an error of the engine's own path (not of a handler) in
    the job's errors, its message prefixed with ``where`` (``"checkpoint failed: "``...).
    """
    run.job_state.record_error(
        ErrorRecord(
            routine_id="",
            slot="",
            error_type=type(exc).__name__,
            message=f"{where}{exc}",
            attempt=1,
            time=datetime.now(),
            strategy="stop",
        )
    )


def take_locked(run: JobRun) -> Snapshot | None:
    """
    With the lock held and nothing in flight: when a checkpoint is due, clear the due
    flag and return its snapshot (for :func:`deliver`); else ``None``.
    """
    if run.checkpoint_fn is None or not run.checkpoint_due or run.in_flight:
        return None
    run.checkpoint_due = False
    run.since_checkpoint = 0
    run.last_checkpoint = current_clock().monotonic()
    run.delivering += 1
    try:
        return snapshot_locked(run)
    except BaseException:
        run.delivering -= 1  # no snapshot to hand over: the job's waiters must not wait for it
        raise


def deliver(run: JobRun, snapshot: Snapshot | None) -> None:
    """
    Without the lock: hand a snapshot (``None``: none) to the checkpoint function. A store
    that cannot write the job's data fails the job, whose failure is written at once in a
    lenient snapshot (or by the runner of what is still in flight); any other error of the
    checkpoint function abandons the job on this process (a stale runner, a store gone):
    nothing more of it runs here, its status is left as it is. A delta the function
    refused (``False``) is followed at once by a whole snapshot.
    """
    fn = run.checkpoint_fn
    while snapshot is not None and fn is not None:
        handoff = retake = False
        accepted = False
        try:
            accepted = fn(run.job_state, snapshot.document) is not False
            retake = snapshot.delta and not accepted
        except SerializationError as exc:
            with run.lock:
                retake = not run.unwritable  # once: a lenient snapshot is strict JSON
                _unwritable_locked(run, exc)
            if not retake:
                _abandon(run, exc)
        except Exception as exc:  # noqa: BLE001 - a stale runner, a store gone: logged
            _abandon(run, exc)
        finally:
            with run.lock:
                run.delivering -= 1
                _accepted_locked(run, snapshot, accepted)
                snapshot = None
                if retake:
                    run.checkpoint_due = True
                    snapshot = take_locked(run)
                if not run.cancelled:
                    release_locked(run)
                    handoff = _want_finisher_locked(run)
                run.cond.notify_all()
                if run.waiters:
                    run.fire_waiters_locked()
        if handoff:
            run.hand_off()


def _accepted_locked(run: JobRun, snapshot: Snapshot, accepted: bool) -> None:
    # With the lock held: the next delta follows the newest accepted snapshot; after a
    # refusal or an error the next snapshot is whole.
    if not run.checkpoint_deltas:
        return
    current = run.delta_base
    if not accepted or snapshot.base is None:
        run.delta_base = None
    elif current is None or snapshot.base.seq > current.seq:
        run.delta_base = snapshot.base


def _abandon(run: JobRun, exc: Exception) -> None:
    # The checkpoint function failed: nothing more of the job runs on this process, and a
    # job still going there fails here (its waiters wake), the error in its errors and
    # what it had still to do (queued, waiting for a retry) in its failed tasks, for a retry.
    run.log.error("checkpoint_failed", error=repr_of(exc), exc_info=exc)
    with run.lock:
        js = run.job_state
        dropped = [as_pending(a) for a in run.queue]
        dropped.extend(as_pending(a) for a in drop_timers(run))
        run.queue.clear()
        if js.status not in FINAL_STATUSES:
            record_engine_error_locked(run, exc, "checkpoint failed: ")
            js.keep_failed_tasks(dropped)
            lifecycle.transition(js, Action.FAIL)
        run.abandoned = True
        run.cancelled = True
        _async.interrupt_locked(run, requeue=False)
        run.finished = True
    run.host.job_settled(run)


def _want_finisher_locked(run: JobRun) -> bool:
    # A job that failed (or has a checkpoint due) while no runner takes its work, for
    # example from a pause's checkpoint: hand it to the pool, which finishes it.
    if run.finished or run.paused or run.drainer or run.runners or run.scheduled:
        return False
    if run.in_flight or not (run.failed or run.checkpoint_due):
        return False
    run.scheduled = True
    return True


def now_locked(run: JobRun) -> None:
    """
    With the lock held once and nothing in flight: take the due checkpoint and hand it
    over without the lock.
    """
    snapshot = take_locked(run)
    run.lock.release()
    try:
        deliver(run, snapshot)
    finally:
        run.lock.acquire()

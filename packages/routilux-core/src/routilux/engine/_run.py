"""
One job's run: its FIFO of activations, its counters, its control flags and the error path.

All fields of a :class:`JobRun` are guarded by the job's lock (the JobState's lock), so the
job's state and its scheduling change together. Handlers always run without that lock.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from routilux._util._log import bind, is_enabled, logger, repr_of, text_of
from routilux.codec._serialization import dump_job_state
from routilux.engine import _async
from routilux.exceptions import JobStateError, SerializationError
from routilux.model import _lifecycle as lifecycle
from routilux.model._context import Frame, current_frame, set_frame
from routilux.model._error_handler import ErrorStrategy
from routilux.model._job_state import ErrorRecord
from routilux.model._lifecycle import Action
from routilux.model._loop import on_event_loop
from routilux.model._slot import merge
from routilux.model._tracker import ExecutionTracker


if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from routilux.engine._flow import Flow
    from routilux.engine._options import RunOptions
    from routilux.engine._pool import WorkerPool
    from routilux.model._connection import Connection
    from routilux.model._event import Event
    from routilux.model._job_state import JobState
    from routilux.model._slot import Slot
    from routilux.plugins._manager import HookRelay

__all__ = ["Activation", "JobControl", "JobRun"]


class JobControl:
    """
    Where a job's remote pause and cancel requests come from (a store, a queue...).

    The scheduler calls :meth:`poll` before each activation starts; it must not block.
    """

    def poll(self) -> str | None:
        """
        Return ``"pause"``, ``"cancel"`` or ``None`` (no request).
        """
        return None


_Target = tuple[str | None, "Slot", "Connection | None"]
"""Where an emit delivers: flow routine id, slot, connection."""

_BUDGET = 64
_ERROR_KEYS = frozenset(("error", "error_type", "error_time"))
"""The keys of a routine state that report its last error."""
"""Activations a worker runs for one job before it lets other waiting jobs go first."""


class _IsolatedHooks:
    """
    The job's hook relay behind a boundary that no exception of a plugin crosses, not
    even a ``BaseException`` (``KeyboardInterrupt`` raised by a hook on a worker): the
    relay isolates ``Exception``; anything else is logged here, so a plugin can never
    leave the job's bookkeeping half done (a lost activation, an unwoken waiter).
    """

    __slots__ = ("relay",)

    def __init__(self, relay: HookRelay) -> None:
        self.relay = relay

    def call(self, hook_name: str, **kwargs: Any) -> None:
        try:
            self.relay.call(hook_name, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the hook-call boundary: logged
            self.relay.log_failure(hook_name, exc, kwargs)

    def change_listener(self, flow: Flow, job_state: JobState) -> Any:
        listener = self.relay.change_listener(flow, job_state)
        if listener is None:
            return None

        def isolated(change: Any) -> None:
            try:
                listener(change)
            except BaseException as exc:  # the hook-call boundary: logged
                log = logger.bind(
                    flow_id=flow.flow_id, job_id=job_state.job_id, routine_id=change.routine_id
                )
                log.error("plugin_failed", hook="change_listener", error=repr_of(exc), exc_info=exc)

        return isolated


@attrs.define(eq=False, slots=True)
class Activation:
    """
    One delivery of data to one slot of one routine of a job.
    """

    routine_id: str | None
    slot: Slot
    #: The payload as emitted (parameter mapping is applied when it runs).
    data: dict[str, Any]
    connection: Connection | None
    #: The job-wide sequence number (for idempotency keys).
    seq: int
    #: Retries already made for this activation.
    attempt: int = 0
    #: True for the entry routine's trigger.
    entry: bool = False


class ReleasedRun:
    """
    What a finished job keeps of its run in ``job_state.run_state``: the flow, the strategy and
    the merge buffers, for code that looks them up and for a resume (the tracker stays in
    ``job_state.execution_tracker``; per-routine counters are taken up again from the
    routine states). The queue, caches, control state and the run object itself are let
    go, so a retained finished JobState stays small: jobs of one flow without merge
    buffers share one ReleasedRun. Resuming the job makes a new run that takes these over.
    """

    __slots__ = ("buffers", "flow", "sequential")

    finished = True
    paused = False
    cancelled = False
    failed = False
    abandoned = False
    in_flight = 0

    def __init__(
        self, flow: Flow, sequential: bool, buffers: dict[tuple[str | None, str], Any] | None
    ) -> None:
        self.flow = flow
        self.sequential = sequential
        self.buffers = buffers

    @staticmethod
    def of(run: JobRun) -> ReleasedRun:
        """
        Return what the finished ``run`` leaves behind (freezing its tracker).
        """
        run.tracker.freeze()
        if run.buffers:
            return ReleasedRun(run.flow, run.sequential, run.buffers)
        shared = run.flow._released
        released = shared.get(run.sequential)
        if released is None:
            released = shared[run.sequential] = ReleasedRun(run.flow, run.sequential, None)
        return released

    def is_settled(self) -> bool:
        """A finished job is settled."""
        return True


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat()


class JobRun:
    """
    The scheduler's private companion of one JobState (never serialized).
    """

    def __init__(
        self, flow: Flow, job_state: JobState, sequential: bool, hooks: HookRelay | None
    ) -> None:
        self.flow = flow
        self.job_state = job_state
        self.sequential = sequential
        self.hooks = _IsolatedHooks(hooks) if hooks is not None else None
        #: The job's lock and condition (shared with the JobState).
        self.cond: threading.Condition = job_state.condition
        #: The job's lock itself (entering it directly is cheaper than through the condition).
        self.lock = job_state.lock
        self.queue: deque[Activation] = deque()
        self.in_flight = 0
        self.timers: dict[int, Activation] = {}
        #: Reasons the job may not finish yet although nothing is queued (a resume under way).
        self.holds = 0
        self.paused = False
        self.cancelled = False
        self.failed = False
        self.finished = False
        #: Waiting in the pool's FIFO.
        self.scheduled = False
        #: Workers (or the draining caller) currently taking this job's activations.
        self.runners = 0
        #: The caller of a blocking sequential ``execute`` is running this job itself.
        self.drainer = False
        self.seq = 0
        self.buffers: dict[tuple[str | None, str], Any] = {}
        #: Per routine: [activations, total seconds, first start (iso), last end (epoch),
        #: last status, extra keys]; written to routine_states at settle points.
        self.stats: dict[str, list[Any]] = {}
        self.dirty: set[str] = set()
        #: Per event: (source routine id, targets), computed once per job (the flow is static).
        self.routes: dict[Event, tuple[str | None, list[_Target]]] = {}
        self.drainer_waiting = False
        self.tracker = ExecutionTracker(
            flow.flow_id,
            limit=job_state.history_limit,
            history=job_state.execution_history,
            lock=job_state.lock,
        )
        self.started = time.perf_counter()
        self.entry_retried = False
        #: Called with (job_state, snapshot) at checkpoints; see :meth:`configure`.
        self.checkpoint_fn: Callable[[JobState, dict[str, Any]], None] | None = None
        self.checkpoint_every = 0
        #: Seconds between time-driven checkpoints (0: none), and when the last was taken.
        self.checkpoint_interval = 0.0
        self.last_checkpoint = 0.0
        self.since_checkpoint = 0
        self.checkpoint_due = False
        #: Checkpoint snapshots taken but not yet handed to the checkpoint function.
        self.delivering = 0
        self.control: JobControl | None = None
        #: The job's data could not be written: its snapshots are lenient from now on.
        self.unwritable = False
        #: The checkpoint function failed: nothing more of the job runs on this process.
        self.abandoned = False
        #: The loop of the job's coroutine activations: the caller's under ``aexecute``;
        #: ``None`` means the process-wide background loop.
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Coroutine activations handed to the loop and not finished yet.
        self.coros: set[_async.CoroActivation] = set()
        #: Retry timers on an event loop (negative handles in ``timers``).
        self.loop_timers: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]] = {}
        #: ``(predicate, callback)`` pairs: the callback runs (with the lock held, so it must
        #: not block) once the predicate holds; see :meth:`when`.
        self.waiters: list[tuple[Callable[[], bool], Callable[[], None]]] = []
        #: The contextvars of the code that started the job; every activation runs in a
        #: copy of it, on whichever thread or loop it runs.
        self.context = contextvars.copy_context()
        self.context.run(set_frame, None)
        self.log = bind(flow_id=flow.flow_id, job_id=job_state.job_id)
        #: Log activations at debug level (decided once per job: structlog is configured).
        self.debug = is_enabled()
        #: No hooks and no debug log: an activation's success is booked by its runner.
        self.plain = self.hooks is None and not self.debug
        job_state.set_change_listener(
            self.hooks.change_listener(flow, job_state) if self.hooks is not None else None
        )

    def configure(self, options: RunOptions) -> None:
        """
        Set the job's checkpointing and remote control from ``options``.

        ``options.checkpoint(job_state, snapshot)`` is called after every
        ``checkpoint_every`` finished activations (0: never), at the first activation
        boundary once ``checkpoint_interval`` seconds passed since the last one (0: never),
        and when the job pauses, finishes, fails or is cancelled. The snapshot is the
        serialized JobState whose ``pending_tasks`` hold every queued activation, taken
        while no activation of the job runs, so resuming from it re-runs exactly the
        activations that had not finished. A checkpoint function that raises
        ``SerializationError`` fails the job (its data cannot be written); any other error
        abandons the job on this process (nothing more of it runs here; its status is left
        as it was): that is how a stale worker stops.
        """
        with self.lock:
            self.checkpoint_fn = options.checkpoint
            self.checkpoint_every = max(0, options.checkpoint_every)
            self.checkpoint_interval = max(0.0, options.checkpoint_interval)
            self.last_checkpoint = time.monotonic()
            self.control = options.control

    # -- checkpoints ------------------------------------------------------------------

    def _snapshot_locked(self) -> dict[str, Any]:
        # The job as a document, its queued activations as pending tasks, under the next
        # checkpoint sequence number (a store keeps the newest). Data that cannot be
        # written fails the job (see _unwritable_locked); its snapshots are lenient then.
        self._flush_states_locked()
        js = self.job_state
        js.checkpoint_seq += 1
        try:
            data = dump_job_state(js, lenient=self.unwritable)
        except SerializationError as exc:
            self._unwritable_locked(exc)
            data = dump_job_state(js, lenient=True)
        queued = [self.as_pending(a) for a in self.queue]
        queued.extend(self.as_pending(a) for a in self.timers.values())
        data["pending_tasks"] = list(data.get("pending_tasks") or []) + queued
        return data

    def _unwritable_locked(self, exc: SerializationError) -> None:
        # The job's data cannot be written to its store (a set, NaN, an int too large...):
        # the job fails with an error naming the path, and its checkpoints from now on
        # write a string naming each such value in its place.
        self.unwritable = True
        self.log.error("checkpoint_unwritable", error=str(exc), path=exc.path)
        self.job_state.record_error(
            ErrorRecord(
                routine_id="",
                slot="",
                error_type=type(exc).__name__,
                message=str(exc),
                attempt=1,
                time=datetime.now(),
                strategy="stop",
            )
        )
        self.fail()

    def _take_checkpoint_locked(self) -> dict[str, Any] | None:
        # With the lock held and nothing in flight: clear the due flag, return the snapshot.
        if self.checkpoint_fn is None or not self.checkpoint_due or self.in_flight:
            return None
        self.checkpoint_due = False
        self.since_checkpoint = 0
        self.last_checkpoint = time.monotonic()
        self.delivering += 1
        return self._snapshot_locked()

    def _deliver_checkpoint(self, snapshot: dict[str, Any] | None) -> None:
        # Without the lock: hand a snapshot to the checkpoint function. A store that cannot
        # write the job's data fails the job, whose failure is written at once in a lenient
        # snapshot (or by the runner of what is still in flight); any other error of the
        # checkpoint function abandons the job on this process (a stale runner, a store
        # gone): nothing more of it runs here, its status is left as it is.
        fn = self.checkpoint_fn
        while snapshot is not None and fn is not None:
            handoff = retake = False
            try:
                fn(self.job_state, snapshot)
            except SerializationError as exc:
                with self.lock:
                    retake = not self.unwritable  # once: a lenient snapshot is strict JSON
                    self._unwritable_locked(exc)
                if not retake:
                    self._abandon(exc)
            except Exception as exc:  # noqa: BLE001 - a stale runner, a store gone: logged
                self._abandon(exc)
            finally:
                with self.lock:
                    self.delivering -= 1
                    snapshot = None
                    if retake:
                        self.checkpoint_due = True
                        snapshot = self._take_checkpoint_locked()
                    if not self.cancelled:
                        self._release_locked()
                        handoff = self._want_finisher_locked()
                    self.cond.notify_all()
                    if self.waiters:
                        self._fire_waiters_locked()
            if handoff:
                self.flow._get_executor().push(self)

    def _abandon(self, exc: Exception) -> None:
        # The checkpoint function failed: nothing more of the job runs on this process.
        self.log.error("checkpoint_failed", error=repr_of(exc), exc_info=exc)
        with self.lock:
            self.abandoned = True
            self.cancelled = True
            self.queue.clear()
            self._drop_timers()
            _async.interrupt_locked(self, requeue=False)
            self.finished = True
        self.flow._job_settled(self)

    def _want_finisher_locked(self) -> bool:
        # A job that failed (or has a checkpoint due) while no runner takes its work, for
        # example from a pause's checkpoint: hand it to the pool, which finishes it.
        if self.finished or self.paused or self.drainer or self.runners or self.scheduled:
            return False
        if self.in_flight or not (self.failed or self.checkpoint_due):
            return False
        self.scheduled = True
        return True

    def _checkpoint_now_locked(self) -> None:
        # With the lock held once and nothing in flight: take the due checkpoint and hand
        # it over without the lock.
        snapshot = self._take_checkpoint_locked()
        self.lock.release()
        try:
            self._deliver_checkpoint(snapshot)
        finally:
            self.lock.acquire()

    def _count_activation_locked(self) -> None:
        # One more finished activation: is a checkpoint due (by count or by time)?
        if self.checkpoint_fn is None:
            return
        if self.checkpoint_every:
            self.since_checkpoint += 1
            if self.since_checkpoint >= self.checkpoint_every:
                self.checkpoint_due = True
        interval = self.checkpoint_interval
        if interval and time.monotonic() - self.last_checkpoint >= interval:
            self.checkpoint_due = True

    def _poll_control_locked(self) -> bool:
        # Apply a remote pause/cancel request; True when one was applied.
        request = self.control.poll() if self.control is not None else None
        if request == "pause":
            self.pause("pause requested", None)
            return True
        if request == "cancel":
            self.cancel("cancel requested")
            return True
        return False

    # -- queueing -------------------------------------------------------------------

    def make_activation(
        self,
        routine_id: str | None,
        slot: Slot,
        data: dict[str, Any],
        connection: Connection | None,
        entry: bool = False,
    ) -> Activation:
        with self.lock:
            seq = self.seq
            self.seq += 1
        return Activation(routine_id, slot, data, connection, seq, 0, entry)

    def emit_event(self, event: Event, payload: dict[str, Any], frame: Frame | None = None) -> None:
        """
        Record an emitted event and queue one activation per connected slot of the flow.

        ``frame`` is the emitting code's frame, when the caller has looked it up already.
        """
        cached = self.routes.get(event)
        if cached is None:
            routine = event.routine
            source = self.flow._get_routine_id(routine) if routine is not None else None
            cached = self.routes[event] = (source, self.flow._targets(event))
        source_id, targets = cached
        now = time.time()
        target = targets[0][0] if targets else None
        js = self.job_state
        if source_id is None:
            # Not a routine of the flow: its emit is not in the history (which speaks in
            # flow routine ids), so the tracker books it.
            self.tracker.record_event("", event.name, target, payload)
        hooks = self.hooks
        if hooks is not None:
            if source_id is not None:  # booked before the plugins hear of it
                js.record_emitted(source_id, event.name, payload, target, now)
            hooks.call(
                "routilux_event_emitted",
                flow=self.flow,
                job_state=js,
                routine_id=source_id,
                event_name=event.name,
                data=payload,
            )
        with self.lock:
            if source_id is not None and hooks is None:
                js.record_emitted(source_id, event.name, payload, target, now)
            if not targets:
                return
            seq = self.seq
            self.seq += len(targets)
            if len(targets) == 1:
                rid, slot, conn = targets[0]
                acts = [Activation(rid, slot, payload, conn, seq)]
            else:
                acts = [
                    Activation(rid, slot, dict(payload), conn, seq + i)
                    for i, (rid, slot, conn) in enumerate(targets)
                ]
            if self.drainer and not (self.cancelled or self.failed or self.paused):
                # The common sequential case: the caller's drain loop takes it.
                queue = self.queue
                for act in acts:
                    queue.append(act)
                if self.drainer_waiting:
                    self.cond.notify_all()
                return
        if frame is None:
            frame = current_frame()
        self.enqueue(acts, frame is not None and frame.run is self and frame.on_runner)

    def enqueue(self, acts: list[Activation], reserve: bool = False) -> None:
        """
        Queue activations (from a handler, a retry timer or a resume).

        Args:
            reserve: The caller is a runner of this job that will take one queued
                activation itself when its handler returns.
        """
        push = False
        with self.lock:
            if self.cancelled:
                return
            if self.failed:
                # A handler still running when the job failed: its work is kept for retry.
                self.job_state.keep_failed_tasks(self.as_pending(a) for a in acts)
                return
            if self.paused:
                self.job_state.add_pending_tasks(self.as_pending(a) for a in acts)
                return
            self.queue.extend(acts)
            if self.drainer:
                if self.drainer_waiting:
                    self.cond.notify_all()
                return
            push = self._want_push(reserve)
            if push:
                self.scheduled = True
        if push:
            self.flow._get_executor().push(self)

    def _want_push(self, reserve: bool) -> bool:
        # Called with the lock held: should this job wait in the pool's FIFO?
        if self.scheduled or self.drainer:
            return False
        if self.sequential:
            # ``in_flight`` without runners: a coroutine of this job runs on its loop, and
            # its completion hands the job back to the pool.
            return self.runners == 0 and not self.in_flight and bool(self.queue)
        return len(self.queue) > (1 if reserve else 0)

    def schedule(self) -> None:
        """
        Hand the job to the pool, even with nothing queued, so that a worker finishes it.
        """
        with self.lock:
            if self.scheduled or self.drainer or self.runners:
                return
            self.scheduled = True
        self.flow._get_executor().push(self)

    # -- running --------------------------------------------------------------------

    def work(self) -> None:
        """
        Run this job's queued activations on the calling pool worker.
        """
        pool = self.flow._get_executor()
        budget = _BUDGET
        cond = self.cond
        with self.lock:
            self.scheduled = False
            self.runners += 1
            try:
                while True:
                    if self.finished or self.cancelled or self.paused:
                        break
                    if self.checkpoint_due:
                        if self.in_flight:
                            break
                        self._checkpoint_now_locked()
                        continue
                    if self.control is not None and self._poll_control_locked():
                        break
                    if not self.queue:
                        if self._quiescent():
                            self._finish()
                        break
                    if self.sequential and self.in_flight:
                        break
                    act = self.queue.popleft()
                    self.in_flight += 1
                    if act.slot._is_async:
                        # Coroutines go to the job's event loop; this worker goes on.
                        _async.spawn_locked(self, act)
                        continue
                    push = self._want_push(reserve=False)
                    if push:
                        self.scheduled = True
                    self._run_locked(act, pool if push else None)
                    budget -= 1
                    if budget == 0:
                        budget = _BUDGET
                        if self.queue and not self.scheduled and pool.has_waiting():
                            self.scheduled = True
                            cond.release()
                            try:
                                pool.push(self)
                            finally:
                                cond.acquire()
                            break
            finally:
                self.runners -= 1
                snapshot = None
                if self.in_flight == 0:
                    self._flush_states_locked()
                    snapshot = self._take_checkpoint_locked()
                    cond.notify_all()
        self._deliver_checkpoint(snapshot)

    def drain(self) -> None:
        """
        Run the job on the calling thread until it finishes, pauses or is cancelled
        (the blocking sequential ``execute``).
        """
        cond = self.cond
        with self.lock:
            self.drainer = True
            self.runners += 1
            try:
                while True:
                    if self.finished or self.cancelled:
                        break
                    if self.paused:
                        if self.in_flight == 0:
                            break
                        self.drainer_waiting = True
                        cond.wait()
                        self.drainer_waiting = False
                        continue
                    if self.checkpoint_due and not self.in_flight:
                        self._checkpoint_now_locked()
                        continue
                    if self.control is not None and self._poll_control_locked():
                        continue
                    if self.queue and not self.in_flight:
                        act = self.queue.popleft()
                        self.in_flight += 1
                        if act.slot._is_async:
                            # It runs on the job's loop; wait for it below, as for any
                            # activation in flight (the job's order stays sequential).
                            _async.spawn_locked(self, act)
                            continue
                        self._run_locked(act, None, True)
                        continue
                    if self._quiescent():
                        self._finish()
                        break
                    self.drainer_waiting = True
                    cond.wait()
                    self.drainer_waiting = False
            finally:
                self.drainer = False
                self.runners -= 1
                if self.failed and self._quiescent():
                    # A fatal error (KeyboardInterrupt...) is on its way up: finish first.
                    self._finish()
                if self.queue and not (self.paused or self.cancelled or self.failed):
                    self.scheduled = True
                    handoff = True
                else:
                    handoff = False
                self._flush_states_locked()
                snapshot = self._take_checkpoint_locked()
                cond.notify_all()
        self._deliver_checkpoint(snapshot)
        if handoff:
            self.flow._get_executor().push(self)

    def wait_settled(self, timeout: float | None) -> bool:
        """
        Wait until the job finished, was cancelled, or paused with nothing running.
        """
        with self.lock:
            return self.cond.wait_for(self.is_settled, timeout)

    def is_settled(self) -> bool:
        """
        Tell whether the job finished, was cancelled, or paused with nothing running
        (call with the lock held).
        """
        if (self.checkpoint_due and self.checkpoint_fn is not None) or self.delivering:
            return False  # a final checkpoint is still to be written
        return self.finished or self.cancelled or (self.paused and self.in_flight == 0)

    def when(self, predicate: Callable[[], bool], callback: Callable[[], None]) -> None:
        """
        Call ``callback`` once ``predicate`` holds (at once if it does now). Both are called
        with the job's lock held, so neither may block (``loop.call_soon_threadsafe`` is
        the intended callback).
        """
        with self.cond:
            if predicate():
                callback()
            else:
                self.waiters.append((predicate, callback))

    def _fire_waiters_locked(self) -> None:
        keep = []
        for predicate, callback in self.waiters:
            if predicate():
                try:
                    callback()
                except Exception as exc:  # noqa: BLE001 - a closed loop: its waiter is gone
                    self.log.debug("waiter_failed", error=repr_of(exc))
            else:
                keep.append((predicate, callback))
        self.waiters = keep

    def _quiescent(self) -> bool:
        return not (self.queue or self.in_flight or self.timers or self.holds or self.finished)

    def _run_locked(
        self, act: Activation, push: WorkerPool | None, reraise_fatal: bool = False
    ) -> None:
        # Called by a runner with the lock held and ``act`` counted in flight: release the
        # lock (hand the job to ``push`` first, when given), run the activation in a copy
        # of the job's context, take the lock again and book the outcome.
        lock = self.lock
        t0: float | None = None
        t1 = 0.0
        lock.release()
        try:
            if push is not None:
                push.push(self)
            t0 = self.context.copy().run(self.execute, act, reraise_fatal)
            t1 = time.time()
        finally:
            lock.acquire()
            self.in_flight -= 1
            if t0 is not None:
                self._ended_locked(act.routine_id, t0, t1, "completed", None)
            if self.checkpoint_fn is not None:
                self._count_activation_locked()
            if self.waiters:
                self._fire_waiters_locked()

    def execute(self, act: Activation, reraise_fatal: bool = False) -> float | None:
        """
        Run one activation of a sync handler on this thread, in a fresh copy of the job's
        context: merge its data, call the handler, book the outcome. A plain success is
        left to the runner to book (it returns the start time); anything else is booked
        here (it returns ``None``). Never raises, except a fatal ``BaseException`` when
        ``reraise_fatal``. (Coroutine handlers go through ``_async.spawn_locked``.)
        """
        set_frame(Frame(self, act, True))  # the context is discarded afterwards: no reset
        rid = act.routine_id
        slot = act.slot
        plain = self.plain
        t0 = time.time() if plain and (rid is None or rid in self.stats) else self.begin(act)
        try:
            merged = self.prepare(act)
            call = slot._call
            if call is not None:
                call(merged)
        except Exception as exc:  # noqa: BLE001 - every handler error goes to the error path
            self._on_error(act, exc, t0)
        except BaseException as exc:
            self._on_error(act, exc, t0, fatal=True)
            if reraise_fatal:
                raise
        else:
            if plain and not act.attempt:
                return t0
            self._succeeded(act, t0)
        return None

    def begin(self, act: Activation) -> float:
        """
        Book the start of an activation (routine state, debug log, hook); return its
        start time. Shared by the sync and the async lane.
        """
        rid = act.routine_id
        t0 = time.time()
        self._started(rid, t0)
        if self.debug:
            self.log.debug(
                "activation_started", routine_id=rid, slot=act.slot.name, attempt=act.attempt + 1
            )
        if self.hooks is not None:
            self.hooks.call(
                "routilux_activation_started",
                flow=self.flow,
                job_state=self.job_state,
                routine_id=rid,
                slot_name=act.slot.name,
                attempt=act.attempt + 1,
            )
        return t0

    def prepare(self, act: Activation) -> Any:
        """
        Return the data the activation's handler gets: mapped by its connection and
        merged by its slot's strategy (merge errors propagate to the error path).
        """
        data = act.data
        conn = act.connection
        if conn is not None and conn.param_mapping:
            data = conn._apply_mapping(data)
        slot = act.slot
        strategy = slot.merge_strategy
        if strategy.__class__ is str and strategy != "append":
            return data  # the slot's caller copies it if the handler gets the dict itself
        key = (act.routine_id, slot.name)
        with self.lock:
            buffer = self.buffers.get(key)
            new_buffer, merged = merge(strategy, {} if buffer is None else buffer, data)
            self.buffers[key] = new_buffer
        return merged

    # -- bookkeeping ----------------------------------------------------------------

    def _started(self, rid: str | None, t0: float) -> None:
        # The first activation of a routine in this run: its counters start from what its
        # routine state says (a resumed job goes on counting), else from zero.
        if rid is None or rid in self.stats:
            return
        with self.lock:
            if rid in self.stats:
                return
            old = self.job_state.routine_states.get(rid)
            if not isinstance(old, dict):
                old = {}
            count = old.get("activation_count")
            total = old.get("execution_time")
            start = old.get("start_time")
            if type(count) is int and isinstance(total, (int, float)) and type(start) is str:
                self.stats[rid] = [count, float(total), start, t0, "running", None]
            else:
                start = _iso(t0)
                self.stats[rid] = [0, 0.0, start, t0, "running", None]
            self.job_state.merge_routine_state(rid, {"status": "running", "start_time": start})

    def _ended(
        self,
        rid: str | None,
        t0: float,
        status: str,
        extra: dict[str, Any] | None,
        error: str | None = None,
    ) -> float:
        # Book one finished activation (see _ended_locked); return its duration.
        t1 = time.time()
        with self.lock:
            self._ended_locked(rid, t0, t1, status, extra, error)
        return t1 - t0

    def _ended_locked(
        self,
        rid: str | None,
        t0: float,
        t1: float,
        status: str,
        extra: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        # With the lock held: book one finished activation. Successes are kept in
        # ``stats`` and written to the routine state at settle points (finish, pause,
        # checkpoint, cancel); anything else is written at once, since it says what went
        # wrong.
        if rid is None:
            return
        stats = self.stats[rid]
        stats[0] += 1
        stats[1] += t1 - t0
        stats[3] = t1
        stats[4] = status
        if status == "completed" and stats[5] and _ERROR_KEYS.intersection(stats[5]):
            # A success after an error: the routine's state no longer reports that error
            # (the history keeps it); the retry count stays.
            stale = {k: v for k, v in stats[5].items() if k in _ERROR_KEYS}
            stats[5] = {k: v for k, v in stats[5].items() if k not in _ERROR_KEYS}
            self.job_state.drop_routine_state_keys(rid, stale)
        if extra:
            stats[5] = {**(stats[5] or {}), **extra}
        if status == "completed":
            self.dirty.add(rid)
        else:
            self.dirty.discard(rid)
            self.job_state.merge_routine_state(rid, self._state_of(stats))
        self.tracker.record_activation(rid, t0, t1, status, error)

    @staticmethod
    def _state_of(stats: list[Any]) -> dict[str, Any]:
        state = {
            "status": stats[4],
            "start_time": stats[2],
            "end_time": _iso(stats[3]),
            "execution_time": stats[1],
            "activation_count": stats[0],
        }
        if stats[5]:
            state.update(stats[5])
        return state

    def _flush_states_locked(self) -> None:
        # Write the routine states of activations booked since the last flush.
        if self.dirty:
            merge_state = self.job_state.merge_routine_state
            for rid in self.dirty:
                merge_state(rid, self._state_of(self.stats[rid]))
            self.dirty.clear()

    def _succeeded(self, act: Activation, t0: float) -> None:
        extra = {"retry_count": act.attempt} if act.attempt else None
        elapsed = self._ended(act.routine_id, t0, "completed", extra)
        if act.entry and act.attempt:
            self.entry_retried = True
        if self.debug:
            self.log.debug(
                "activation_finished",
                routine_id=act.routine_id,
                slot=act.slot.name,
                duration=elapsed,
            )
        if self.hooks is not None:
            self.hooks.call(
                "routilux_activation_finished",
                flow=self.flow,
                job_state=self.job_state,
                routine_id=act.routine_id,
                slot_name=act.slot.name,
                duration=elapsed,
            )

    def _on_error(
        self, act: Activation, exc: BaseException, t0: float, fatal: bool = False
    ) -> None:
        flow = self.flow
        js = self.job_state
        rid = act.routine_id
        routine = flow.routines.get(rid) if rid is not None else None
        handler = flow._get_error_handler_for_routine(routine, rid)
        strategy = handler.strategy if handler is not None else None
        message = text_of(exc)
        error_type = type(exc).__name__
        record_id = rid if rid is not None else ""
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        js.record_execution(
            record_id,
            "error",
            {
                "slot": act.slot.name,
                "error": message,
                "error_type": error_type,
                "attempt": act.attempt + 1,
                "traceback": trace,
            },
        )
        log = self.log.bind(routine_id=rid, slot=act.slot.name)
        applied: str
        error_state = {"error": message, "error_type": error_type}
        failed_state: dict[str, Any] = {**error_state, "error_time": _iso(time.time())}
        if fatal:
            applied = "stop"
            self._ended(rid, t0, "failed", error_state, message)
        elif strategy is ErrorStrategy.RETRY:
            assert handler is not None
            if handler.is_retryable(exc) and act.attempt < handler.max_retries:
                applied = "retry"
                handler._mirror(act.attempt + 1)
                self._ended(
                    rid, t0, "retrying", {**error_state, "retry_count": act.attempt + 1}, message
                )
                self._retry_later(act, handler.retry_delay_for(act.attempt))
            else:
                handler._mirror(handler.max_retries if handler.is_retryable(exc) else 0)
                extra = failed_state
                if act.attempt:
                    extra = {**failed_state, "retry_count": act.attempt}
                applied = "stop" if handler.is_critical or act.entry else "continue"
                self._ended(rid, t0, "failed", extra, message)
        elif strategy is ErrorStrategy.STOP:
            applied = "stop"
            self._ended(rid, t0, "failed", failed_state, message)
        elif strategy is ErrorStrategy.CONTINUE:
            applied = "continue"
            js.record_execution(record_id, "error_continued", dict(error_state))
            self._ended(rid, t0, "error_continued", error_state, message)
        elif strategy is ErrorStrategy.SKIP:
            applied = "skip"
            self._ended(rid, t0, "skipped", error_state, message)
        else:
            applied = "stop" if act.entry else "continue"
            self._ended(rid, t0, "failed", failed_state, message)
        js.record_error(
            ErrorRecord(
                routine_id=record_id,
                slot=act.slot.name,
                error_type=error_type,
                message=message,
                attempt=act.attempt + 1,
                time=datetime.now(),
                strategy=applied,
                traceback=trace,
            )
        )
        if applied == "stop":
            self.fail(self.as_failed(act, error_type, message))
            log.error("activation_failed", error=repr_of(exc), strategy=applied, exc_info=exc)
        else:
            log.warning("activation_failed", error=repr_of(exc), strategy=applied)
        if self.hooks is not None:
            self.hooks.call(
                "routilux_activation_failed",
                flow=flow,
                job_state=js,
                routine_id=rid,
                slot_name=act.slot.name,
                error=exc,
                strategy=applied,
            )

    def _retry_later(self, act: Activation, delay: float) -> None:
        again = attrs.evolve(act, attempt=act.attempt + 1)
        with self.lock:
            if self.cancelled:
                return
            if self.failed:
                self.job_state.keep_failed_tasks([self.as_pending(again)])
                return
            if self.paused:
                self.job_state.add_pending_tasks([self.as_pending(again)])
                return
            loop = _async.running_loop() if act.slot._is_async else None
            if loop is not None:
                # A coroutine's retry waits on its own loop, not on the flow's timer thread.
                handle = _async.next_loop_handle()
                self.loop_timers[handle] = (loop, loop.call_later(delay, self._retry_due, handle))
            else:
                handle = self.flow._get_timer().call_later(delay, self._retry_due)
            self.timers[handle] = again

    def _retry_due(self, handle: int) -> None:
        with self.lock:
            act = self.timers.pop(handle, None)
            if handle < 0:
                self.loop_timers.pop(handle, None)
            if act is not None:
                # Outstanding until queued: the job must not finish in between.
                self.holds += 1
        if act is not None:
            try:
                self.enqueue([act])
            finally:
                self.release_hold()

    def fail(self, failed: dict[str, Any] | None = None) -> None:
        """
        Fail the job (also a paused one): nothing new of it starts; running handlers
        finish. The failed activation (``failed``, as :meth:`as_failed` data), what was
        queued, waiting for a retry or pending, and what running handlers emit from now on
        are kept in ``job_state.failed_tasks`` for :meth:`Flow.retry`. A cancelled job
        stays cancelled.
        """
        with self.lock:
            if self.cancelled:
                return
            kept = [] if failed is None else [failed]
            kept.extend(self.as_pending(a) for a in self.queue)
            kept.extend(self.as_pending(a) for a in self._drop_timers())
            self.queue.clear()
            self.failed = True
            # A pause under way gives way: the runner that sees the job quiescent finishes it.
            self.paused = False
            self.job_state.keep_failed_tasks(kept)
            lifecycle.transition(self.job_state, Action.FAIL)
            self.cond.notify_all()
            if self.waiters:
                self._fire_waiters_locked()

    def _drop_timers(self) -> list[Activation]:
        timer = self.flow._timer
        dropped = list(self.timers.values())
        for handle in self.timers:
            if handle < 0:
                _async.cancel_loop_timer(self.loop_timers.pop(handle, None))
            elif timer is not None:
                timer.cancel(handle)
        self.timers.clear()
        return dropped

    def _finish(self) -> None:
        # Called with the lock held, once the job is quiescent; the caller delivers the
        # final checkpoint after releasing the lock.
        js = self.job_state
        self.finished = True
        self.checkpoint_due = self.checkpoint_fn is not None
        self._flush_states_locked()
        if self.failed:
            lifecycle.transition(js, Action.FAIL)
        else:
            entry = js.current_routine_id
            if entry is not None:
                data: dict[str, Any] = {"execution_time": time.perf_counter() - self.started}
                if self.entry_retried:
                    data["retried"] = True
                js.record_execution(entry, "completed", data)
            lifecycle.transition(js, Action.FINISH)
        self.cond.notify_all()
        if self.waiters:
            self._fire_waiters_locked()
        self.log.debug("job_finished", status=js.status)
        self.flow._job_settled(self)
        self._release_locked()
        if self.hooks is not None:
            self.hooks.call("routilux_job_finished", flow=self.flow, job_state=js)

    def _release_locked(self) -> None:
        # A finished job whose last checkpoint is written keeps only a ReleasedRun.
        if self.finished and self.is_settled() and self.job_state.run_state is self:
            self.job_state.release_run(ReleasedRun.of(self))

    # -- control --------------------------------------------------------------------

    def pause(self, reason: str, checkpoint: dict[str, Any] | None) -> None:
        """
        Stop starting activations; move queued ones (and waiting retries) into the job's
        ``pending_tasks``; record one pause point; wait for running handlers unless called
        from one of them. The job counts as running for ``flow.wait_for_completion()``
        until no handler of it runs (it is settled).

        Raises:
            JobStateError: The job's status does not allow a pause (failed, cancelled).
        """
        js = self.job_state
        with self.lock:
            live = js.run_state
            if isinstance(live, JobRun) and live is not self:
                # This run finished and a resume gave the job a new one: pause that.
                return live.pause(reason, checkpoint)
            lifecycle.next_status(js.status, Action.PAUSE, job_id=js.job_id)
            self.paused = True
            # Running coroutines are cancelled and go back first: they came off the queue
            # before anything still in it (at least once: see docs/async.md).
            moved = [self.as_pending(a) for a in _async.interrupt_locked(self, requeue=True)]
            moved.extend(self.as_pending(a) for a in self.queue)
            self.queue.clear()
            moved.extend(self.as_pending(a) for a in self._drop_timers())
            js.add_pending_tasks(moved)
            self._flush_states_locked()
            js.record_pause(
                reason,
                checkpoint,
                pending_tasks_count=len(js.pending_tasks),
                active_tasks_count=self.in_flight,
                queue_size=len(moved),
            )
            self.checkpoint_due = self.checkpoint_fn is not None
            self.cond.notify_all()
            if self.waiters:
                self._fire_waiters_locked()
            frame = current_frame()
            inside = frame is not None and frame.run is self
            # On an event loop's thread, waiting could block the coroutines we wait for.
            if not inside and not on_event_loop():
                self.cond.wait_for(lambda: self.in_flight == 0 or not self.paused)
            snapshot = self._take_checkpoint_locked() if self.paused else None
            # The flow counts the job as running until it settles (a handler that paused
            # its own job may still run, and a STOP error of it fails the job).
            self.waiters.append((self._paused_and_settled, self._settled_while_paused))
            self._fire_waiters_locked()
        self._deliver_checkpoint(snapshot)

    def _paused_and_settled(self) -> bool:
        return not self.paused or self.is_settled()

    def _settled_while_paused(self) -> None:
        # With the lock held (a waiter callback): a paused job with nothing running no
        # longer keeps flow.wait_for_completion() waiting (a job that failed instead is
        # released by its finish).
        if self.paused:
            self.flow._job_settled(self)

    def cancel(self, reason: str) -> None:
        """
        Drop queued work and waiting retries, mark the job cancelled and wake its waiters.
        Cancelling a cancelled job does nothing.

        Raises:
            JobStateError: The job's status does not allow a cancel (failed).
        """
        with self.lock:
            js = self.job_state
            live = js.run_state
            if isinstance(live, JobRun) and live is not self:
                # This run finished and a resume gave the job a new one: cancel that.
                return live.cancel(reason)
            if lifecycle.next_status(js.status, Action.CANCEL, job_id=js.job_id) == js.status:
                return  # cancelled already
            self.cancelled = True
            self.queue.clear()
            js.drop_pending_tasks()
            self._drop_timers()
            _async.interrupt_locked(self, requeue=False)
            self._flush_states_locked()
            js.record_cancel(reason)
            self.finished = True
            snapshot = None
            if self.checkpoint_fn is not None:
                self.delivering += 1
                snapshot = self._snapshot_locked()
            self.cond.notify_all()
            if self.waiters:
                self._fire_waiters_locked()
        self.flow._job_settled(self)
        self._deliver_checkpoint(snapshot)
        if self.hooks is not None:
            self.hooks.call("routilux_job_finished", flow=self.flow, job_state=self.job_state)

    def reopen(self, action: Action) -> bool:
        """
        Make a paused or finished job runnable again (``action``: resume or retry); return
        ``False`` when it is running already.

        Raises:
            JobStateError: The job's status does not allow ``action``.
        """
        with self.lock:
            js = self.job_state
            lifecycle.next_status(js.status, action, job_id=js.job_id)
            if action is Action.RETRY and not self.finished:
                self._wait_failed_run_locked()
            if not (self.paused or self.finished or self.cancelled):
                return False
            live = js.run_state
            if live is not self:
                if isinstance(live, JobRun):
                    # A resume gave the job a new run after this one finished.
                    return False
                # Released at finish while a resume held this run: attach it again (its
                # tracker books again).
                js.attach_run(self)
                self.tracker.thaw()
            lifecycle.transition(js, action)
            self.paused = self.cancelled = self.failed = self.finished = False
            self.holds += 1
            self.started = time.perf_counter()
            return True

    def _wait_failed_run_locked(self) -> None:
        # A retry of a failed job whose handlers still run waits for them (the failure
        # stopped everything else), unless it is one of them, or on an event loop.
        frame = current_frame()
        js = self.job_state
        if (frame is not None and frame.run is self) or on_event_loop():
            msg = (
                f"cannot retry job {js.job_id!r} from one of its own handlers or on an event "
                "loop while its failed run winds down (wait_for_completion() first)"
            )
            raise JobStateError(msg, job_id=js.job_id, status=js.status, action="retry")
        self.cond.wait_for(lambda: self.finished or not self.failed)

    def release_hold(self) -> None:
        """
        End a resume: hand the job to the pool, which finishes it if nothing is left.
        """
        with self.lock:
            self.holds -= 1
            if self.drainer or self.runners or self.scheduled:
                self.cond.notify_all()
                return
            self.scheduled = True
        self.flow._get_executor().push(self)

    # -- pending tasks as data ------------------------------------------------------

    def as_pending(self, act: Activation) -> dict[str, Any]:
        """
        Describe a queued activation as plain data (for ``JobState.pending_tasks``).
        """
        conn = act.connection
        event = conn.source_event if conn is not None else None
        return {
            "slot_routine_id": act.routine_id,
            "slot_name": act.slot.name,
            "data": act.data,
            "connection_source_routine_id": conn.source_routine_id if conn is not None else None,
            "connection_source_event_name": event.name if event is not None else None,
            "connection_target_routine_id": conn.target_routine_id if conn is not None else None,
            "connection_target_slot_name": act.slot.name if conn is not None else None,
            "param_mapping": dict(conn.param_mapping) if conn is not None else {},
            "priority": 2,
            "retry_count": act.attempt,
            "max_retries": 0,
            "created_at": datetime.now().isoformat(),
            "seq": act.seq,
            "entry": act.entry,
        }

    def as_failed(self, act: Activation, error_type: str, message: str) -> dict[str, Any]:
        """
        Describe a failed activation as plain data (for ``JobState.failed_tasks``): its
        pending-task form with the error that failed it.
        """
        return {**self.as_pending(act), "error": {"type": error_type, "message": message}}

    def from_pending(self, task: dict[str, Any], *, fresh: bool = False) -> Activation:
        """
        Rebuild an activation from :meth:`as_pending` data (its routine and slot were
        checked against the flow by ``Flow.resume``/``Flow.retry``); ``fresh`` starts its
        retry count from 0 (a retry of the job is a new attempt).
        """
        flow = self.flow
        rid = task["slot_routine_id"]
        slot = flow.routines[rid].get_slot(task["slot_name"])
        assert slot is not None  # checked before the job was reopened
        conn = flow._find_connection_by_ids(
            task.get("connection_source_routine_id"),
            task.get("connection_source_event_name"),
            rid,
            slot.name,
        )
        seq = task.get("seq")
        with self.lock:
            if not isinstance(seq, int):
                seq = self.seq
            self.seq = max(self.seq, seq + 1)
        attempt = 0 if fresh else task.get("retry_count", 0)
        return Activation(
            rid,
            slot,
            dict(task.get("data") or {}),
            conn,
            seq,
            attempt if isinstance(attempt, int) else 0,
            bool(task.get("entry")),
        )

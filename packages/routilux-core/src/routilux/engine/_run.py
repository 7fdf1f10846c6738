"""
One job's run: its FIFO of activations, its counters and control flags, and its interface.

All fields of a :class:`JobRun` are guarded by the job's lock (the JobState's lock), so the
job's state and its scheduling change together; handlers always run without that lock. Its
steps live by concern: ``_loops`` (running the queue), ``_booking``, ``_errors``,
``_retries``, ``_checkpoints``, ``_steps`` (the lifecycle), ``_async`` and ``_released``.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from routilux._util._log import bind, is_enabled, repr_of
from routilux.engine import _booking, _errors, _loops, _steps
from routilux.engine._activation import Activation, activation_of, as_pending, fan_out
from routilux.engine._async import CoroActivation
from routilux.engine._clock import current_clock
from routilux.engine._hooks import IsolatedHooks, install_hooks
from routilux.engine._timeouts import discard_emit
from routilux.model._context import Frame, set_frame
from routilux.model._tracker import ExecutionTracker


if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from routilux.codec._job_deltas import DeltaBase
    from routilux.engine._async import AsyncGate
    from routilux.engine._control import JobControl
    from routilux.engine._options import RunOptions
    from routilux.engine._runtime import RunHost
    from routilux.model._definition import FlowDefinition
    from routilux.model._event import Event
    from routilux.model._job_state import JobState
    from routilux.model._lifecycle import Action
    from routilux.model._slot import Slot
    from routilux.plugins._manager import HookRelay

__all__ = ["JobRun"]


class JobRun:
    """
    The scheduler's private companion of one JobState (never serialized). Its attributes
    and methods are the engine's internal interface: the engine's modules and the flow
    use them with the job's lock held where the name says ``_locked``.
    """

    def __init__(
        self,
        flow: FlowDefinition,
        job_state: JobState,
        sequential: bool,
        hooks: HookRelay | None,
        host: RunHost,
    ) -> None:
        #: The flow the job runs in.
        self.flow = flow
        #: The job's state.
        self.job_state = job_state
        #: One activation of the job at a time, in FIFO order.
        self.sequential = sequential
        #: The flow's resources, as runs use them.
        self.host = host
        #: The plugin hooks of the job, or ``None`` without plugins (set by ``install_hooks``).
        self.hooks: IsolatedHooks | None
        #: The job's lock and condition (shared with the JobState).
        self.cond: threading.Condition = job_state.condition
        #: The job's lock itself (entering it directly is cheaper than through the condition).
        self.lock = job_state.lock
        #: The activations waiting to run, in FIFO order.
        self.queue: deque[Activation] = deque()
        #: Activations taken from the queue and not finished yet.
        self.in_flight = 0
        #: Retries waiting on a timer, by timer handle (see ``_retries``).
        self.timers: dict[int, Activation] = {}
        #: Reasons the job may not finish yet although nothing is queued (a resume under way).
        self.holds = 0
        #: The job is paused, cancelled, failed (by a STOP error), or finished its work
        #: (cancelled or not): what runs of it and what it still takes.
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
        #: The sequence number of the job's next activation.
        self.seq = 0
        #: The merge buffers of the job's slots, by (routine id, slot name).
        self.buffers: dict[tuple[str | None, str], Any] = {}
        #: Per routine: [activations, total seconds, first start (iso), last end (epoch),
        #: last status, extra keys, first start (epoch, or the iso text when taken over
        #: from the routine state)]; written to routine_states at settle points.
        self.stats: dict[str, list[Any]] = {}
        #: Per routine whose state the run wrote: the dict it wrote last, and the start
        #: (as in ``stats``) and end (epoch) it says (see ``written_states``).
        self.written: dict[str, tuple[dict[str, Any], float | str, float]] = {}
        #: Routines whose stats changed since their state was last written.
        self.dirty: set[str] = set()
        #: Per event, computed once per job (the flow is static): see ``_booking.Route``.
        self.routes: dict[Event, _booking.Route] = {}
        #: The drainer waits on the condition for work.
        self.drainer_waiting = False
        #: The job's execution tracker.
        self.tracker = ExecutionTracker(
            flow.flow_id,
            limit=job_state.history_limit,
            history=job_state.execution_history,
            lock=job_state.lock,
        )
        #: When the run (or its last reopening) started (``time.perf_counter``).
        self.started = time.perf_counter()
        #: The entry activation succeeded after a retry.
        self.entry_retried = False
        #: Called with (job_state, snapshot) at checkpoints; see :meth:`configure`.
        self.checkpoint_fn: Callable[[JobState, dict[str, Any]], bool | None] | None = None
        #: Checkpoints after the first are deltas from ``delta_base`` (``None``: whole).
        self.checkpoint_deltas = False
        self.delta_base: DeltaBase | None = None
        #: Activations between checkpoints (0: none), and how many finished since the last.
        self.checkpoint_every = 0
        self.since_checkpoint = 0
        #: Seconds between time-driven checkpoints (0: none), and when the last was taken.
        self.checkpoint_interval = 0.0
        self.last_checkpoint = 0.0
        #: A checkpoint is to be taken as soon as nothing runs.
        self.checkpoint_due = False
        #: Checkpoint snapshots taken but not yet handed to the checkpoint function.
        self.delivering = 0
        #: Where remote pause and cancel requests come from.
        self.control: JobControl | None = None
        #: The job's data could not be written: its snapshots are lenient from now on.
        self.unwritable = False
        #: The checkpoint function failed: nothing more of the job runs on this process.
        self.abandoned = False
        #: The loop of the job's coroutines (``aexecute``'s; ``None``: the background one).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Coroutine activations handed to the loop and not finished yet.
        self.coros: set[CoroActivation] = set()
        #: The flow timer's handle of the job's deadline (see ``_timeouts``), or ``None``.
        self.deadline: int | None = None
        #: ``(predicate, callback)`` pairs: the callback runs (with the lock held, so it must
        #: not block) once the predicate holds; see :meth:`when`.
        self.waiters: list[tuple[Callable[[], bool], Callable[[], None]]] = []
        #: The contextvars of the code that started the job; every activation runs in a
        #: copy of it, on whichever thread or loop it runs.
        self.context = contextvars.copy_context()
        self.context.run(set_frame, None)
        #: The job's bound logger.
        self.log = bind(flow_id=flow.flow_id, job_id=job_state.job_id)
        #: Log activations at debug level (decided once per job: structlog is configured).
        self.debug = is_enabled()
        #: No hooks and no debug log: an activation's success is booked by its runner (set
        #: by ``install_hooks``, with ``hooks``).
        self.plain: bool
        install_hooks(self, hooks)

    def configure(self, options: RunOptions) -> None:
        """
        Set the job's checkpointing and remote control from ``options`` (see
        :class:`~routilux.engine._options.RunOptions` and ``_checkpoints``: a checkpoint
        function that raises ``SerializationError`` fails the job; any other error abandons
        it on this process, which is how a stale worker stops).
        """
        with self.lock:
            self.checkpoint_fn = options.checkpoint
            self.checkpoint_deltas = options.checkpoint_deltas
            self.delta_base = None
            self.checkpoint_every = max(0, options.checkpoint_every)
            self.checkpoint_interval = max(0.0, options.checkpoint_interval)
            self.last_checkpoint = current_clock().monotonic()
            self.control = options.control

    # -- the queue ----------------------------------------------------------------------

    def queue_entry(self, routine_id: str, slot: Slot, params: dict[str, Any]) -> None:
        """
        Queue the job's entry activation: ``params`` to ``slot`` of the entry routine, and
        release the hold the start of the job took.
        """
        with self.lock:
            act = Activation(routine_id, slot, params, None, self.seq, 0, True)
            self.seq += 1
            self.holds -= 1
            self.place_locked([act])

    def emit_event(self, event: Event, payload: dict[str, Any], frame: Frame) -> None:
        """
        Record an emitted event and queue one activation per connected slot of the flow.

        ``frame`` is the emitting code's frame (its run is this run). An emit of a handler
        past its timeout is discarded (see ``_timeouts``).
        """
        act = frame.activation
        if act is not None and act.watch is not None and discard_emit(self, act, event):
            return
        cached = self.routes.get(event)
        if cached is None:
            cached = self.routes[event] = _booking.route(self.flow, event)
        source_id, targets, booked, given = cached
        now = time.time()
        js = self.job_state
        if source_id is None:
            # Not a routine of the flow: its emit is not in the history (which speaks in
            # flow routine ids), so the tracker books it.
            self.tracker.record_event("", event.name, given.routine_id, payload)
        hooks = self.hooks
        if hooks is not None:
            if source_id is not None:  # booked before the plugins hear of it
                js.record_emitted(source_id, event.name, payload, given, now)
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
                js.record_emitted(source_id, event.name, payload, booked, now)
            if not targets:
                return
            acts = fan_out(targets, payload, self.seq)
            self.seq += len(targets)
            if self.drainer:  # the common sequential case: the caller's drain loop takes it
                self.place_locked(acts)
                return
        self.enqueue(acts, frame.runner == threading.get_ident())

    def enqueue(self, acts: list[Activation], reserve: bool = False) -> None:
        """
        Queue activations (from a handler, a retry timer or a resume).

        Args:
            reserve: The caller is a runner of this job that will take one queued
                activation itself when its handler returns.
        """
        with self.lock:
            self.place_locked(acts)
            push = self.want_push(reserve)
            if push:
                self.scheduled = True
        if push:
            self.hand_off()

    def place_locked(self, acts: list[Activation]) -> None:
        """
        With the lock held: put ``acts`` where the job's state says. A running job queues
        them (waking a drain loop that waits for work); a cancelled one drops them; a
        failed one keeps them for a retry (a handler still running when the job failed
        emitted them); a paused one keeps them pending (a handler still running, or a
        listener of ``job_started``, paused it). Only a running job's queue has anything
        in it: pause, fail and cancel empty it under the lock that marks the job.
        """
        if self.cancelled:
            return
        if self.failed:
            self.job_state.keep_failed_tasks(as_pending(a) for a in acts)
            return
        if self.paused:
            self.job_state.add_pending_tasks(as_pending(a) for a in acts)
            return
        self.queue.extend(acts)
        if self.drainer_waiting:
            self.cond.notify_all()

    def want_push(self, reserve: bool) -> bool:
        """
        With the lock held: tell whether this job is to wait in the pool's FIFO now
        (``reserve``: as for :meth:`enqueue`).
        """
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
        self.hand_off()

    def hand_off(self) -> None:
        """
        Hand the job to the flow's worker pool.

        Raises:
            SchedulerShutdownError: The pool was shut down.
        """
        self.host.pool().push(self)

    # -- waiting --------------------------------------------------------------------------

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

    def fire_waiters_locked(self) -> None:
        """
        With the lock held: call the callbacks of :meth:`when` whose predicate holds now.
        """
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

    def quiescent(self) -> bool:
        """
        With the lock held: tell whether the job's work is done (nothing queued, running,
        waiting for a retry or held back by a resume).
        """
        return not (self.queue or self.in_flight or self.timers or self.holds or self.finished)

    # -- running ----------------------------------------------------------------------

    def work(self) -> None:
        """
        Run the job's queued activations on the calling pool worker.
        """
        _loops.work(self)

    def drain(self) -> None:
        """
        Run the job on the calling thread until it finishes, pauses or is cancelled (the
        blocking sequential ``execute``).
        """
        _loops.drain(self)

    def from_pending(self, task: dict[str, Any], *, fresh: bool) -> Activation:
        """
        Rebuild an activation of this job from pending-task data (keeping its sequence
        number when it has one); ``fresh`` starts its retry count from 0.
        """
        seq = task.get("seq")
        with self.lock:
            if not isinstance(seq, int):
                seq = self.seq
            self.seq = max(self.seq, seq + 1)
        return activation_of(self.flow, task, seq, fresh=fresh)

    # -- the lifecycle ------------------------------------------------------------------

    def pause(self, reason: str, checkpoint: dict[str, Any] | None) -> None:
        """
        Stop starting activations; move queued ones (and waiting retries) into the job's
        ``pending_tasks``; record one pause point; wait for running handlers unless called
        from one of them. The job counts as running for ``flow.wait_for_completion()``
        until no handler of it runs (it is settled).

        Raises:
            JobStateError: The job's status does not allow a pause (failed, cancelled).
        """
        _steps.pause(self, reason, checkpoint)

    def cancel(self, reason: str) -> None:
        """
        Drop queued work and waiting retries, mark the job cancelled and wake its waiters.
        Cancelling a cancelled job does nothing.

        Raises:
            JobStateError: The job's status does not allow a cancel (failed).
        """
        _steps.cancel(self, reason)

    def fail(self, failed: dict[str, Any] | None = None) -> None:
        """
        Fail the job (see :func:`routilux.engine._steps.fail`).
        """
        _steps.fail(self, failed)

    def reopen(self, action: Action) -> bool:
        """
        Make a paused or finished job runnable again (``action``: resume or retry); return
        ``False`` when it is running already.

        Raises:
            JobStateError: The job's status does not allow ``action``.
        """
        return _steps.reopen(self, action)

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
        self.hand_off()

    # -- the coroutine lane's interface (see _async.LaneRun) -----------------------------

    def async_gate(self) -> AsyncGate:
        """
        The bound on the flow's coroutine activations.
        """
        return self.host.async_gate()

    def begin(self, act: Activation) -> float:
        """
        Book the start of an activation; return its start time.
        """
        return _booking.begin(self, act)

    def prepare(self, act: Activation) -> Any:
        """
        Return the data the activation's handler gets (merge errors propagate).
        """
        return _loops.prepare(self, act)

    def succeeded(self, act: Activation, t0: float) -> None:
        """
        Book an activation that succeeded.
        """
        _booking.succeeded(self, act, t0)

    def on_error(self, act: Activation, exc: BaseException, t0: float, fatal: bool = False) -> None:
        """
        Send a handler's error down the job's error path.
        """
        _errors.on_error(self, act, exc, t0, fatal)

    def interrupted(self, act: Activation, t0: float, exc: BaseException, requeued: bool) -> None:
        """
        Book an activation a pause (``requeued``: it runs again on resume) or a cancel of
        the job stopped.
        """
        _booking.interrupted(self, act, t0, exc, requeued)

    def written_states(self) -> dict[str, tuple[dict[str, Any], float | str, float]]:
        """
        With the lock held: per routine whose state the run wrote, the dict it wrote last,
        the start it says (the epoch time it was formatted from, or the text taken over
        from the job's state) and its end (epoch).
        """
        return self.written

    def coroutine_done(self, counted: bool) -> bool:
        """
        With the lock held: a coroutine activation is over (``counted``: its handler was
        called). Book what a worker books after a sync handler, and tell whether the job
        is to be handed to the pool now (it is then marked scheduled).
        """
        return _loops.coroutine_done_locked(self, counted)

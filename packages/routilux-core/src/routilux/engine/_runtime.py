"""
What a Flow keeps to run its jobs (pool, timer, async gate), and its runs' host.

The host (:class:`RunHost`) is the flow as a job's run uses it.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Protocol, TypeVar

from routilux.engine._clock import Clock, TimerQueue, current_clock
from routilux.engine._pool import WorkerPool
from routilux.engine._released import ReleasedRun
from routilux.engine._run import JobRun
from routilux.exceptions import FlowMismatchError
from routilux.model._definition import FlowDefinition, check_strategy, check_workers


if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from routilux.engine._async import AsyncGate
    from routilux.model._error_handler import ErrorHandler
    from routilux.model._job_state import JobState
    from routilux.model._stream_event import StreamEvent
    from routilux.model._tracker import ExecutionTracker
    from routilux.plugins._manager import PluginManager

__all__ = ["FlowRuntime", "RunHost"]

_R = TypeVar("_R", bound="FlowRuntime")


class RunHost(Protocol):
    """
    The flow's resources as a job's run uses them (the engine's interface of a Flow to
    its runs; each Flow has one).
    """

    def pool(self) -> WorkerPool:
        """The flow's worker pool (made on first use)."""

    def timer(self) -> TimerQueue:
        """The flow's timer: retries, timeouts, deadlines (made on first use)."""

    def started_timer(self) -> TimerQueue | None:
        """The flow's timer if it was made, else ``None``."""

    def async_gate(self) -> AsyncGate:
        """The bound on the flow's coroutine activations."""

    def job_settled(self, run: JobRun) -> None:
        """The job of ``run`` no longer keeps ``flow.wait_for_completion()`` waiting."""

    def released_run(self, sequential: bool) -> ReleasedRun:
        """What the flow's finished jobs without merge buffers keep (one, shared)."""


class FlowRuntime(FlowDefinition):
    """
    The part of a :class:`~routilux.engine._flow.Flow` that keeps what its jobs run on:
    the worker pool shared by its jobs (made on first use), the timer of its retries,
    timeouts and deadlines, the bound on coroutine activations, and the jobs running (see
    ``Flow`` for the arguments).
    """

    def __init__(
        self,
        flow_id: str | None = None,
        execution_strategy: str = "sequential",
        max_workers: int = 5,
        *,
        max_async: int = 32,
        history_limit: int | None = None,
        plugins: PluginManager | None = None,
        thread_name_prefix: str | None = None,
    ) -> None:
        super().__init__(
            flow_id,
            execution_strategy,
            max_workers,
            max_async=max_async,
            history_limit=history_limit,
        )
        self._plugins = plugins
        self._thread_name_prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._active_cond = threading.Condition(self._lock)
        self._active: set[JobRun] = set()
        self._executor: WorkerPool | None = None
        self._timer: TimerQueue | None = None
        self._timer_clock: Clock | None = None
        #: Timers of clocks installed before the current one, kept serving what they hold
        #: until shutdown (a test's fake clock came or went while the flow lived).
        self._old_timers: list[TimerQueue] = []
        self._async_gate: AsyncGate | None = None
        self._last_run: JobRun | None = None
        #: What finished jobs without merge buffers keep of their run, by strategy
        #: (shared: see ReleasedRun).
        self._released: dict[bool, ReleasedRun] = {}
        self._finalizers: dict[str, weakref.finalize[..., FlowRuntime]] = {}
        # What this flow's runs use of it (see RunHost).
        self._host = _Host(self)

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=exc is None)

    # -- definition -----------------------------------------------------------------

    def redefine(
        self,
        *,
        flow_id: str,
        execution_strategy: str,
        max_workers: int,
        max_async: int,
        history_limit: int | None,
        error_handler: ErrorHandler | None,
    ) -> None:
        """
        As :meth:`FlowDefinition.redefine`; the worker pool is replaced (jobs already running
        keep theirs until they finish).
        """
        with self._lock:
            old, self._executor = self._executor, None
            super().redefine(
                flow_id=flow_id,
                execution_strategy=execution_strategy,
                max_workers=max_workers,
                max_async=max_async,
                history_limit=history_limit,
                error_handler=error_handler,
            )
        if old is not None:
            old.shutdown(wait=True)

    def set_execution_strategy(self, strategy: str, max_workers: int | None = None) -> None:
        """
        Change the default strategy: sequential uses one worker; concurrent uses
        ``max_workers`` (5 when not given). The worker pool is replaced.

        Raises:
            ConfigurationError: An unknown strategy or a bad worker count.
        """
        strategy = check_strategy(strategy)
        workers = 1 if strategy == "sequential" else check_workers(max_workers or 5)
        with self._lock:
            old, self._executor = self._executor, None
            self.execution_strategy = strategy
            self.max_workers = workers
        if old is not None:
            old.shutdown(wait=True)
        self._get_executor()

    # -- resources ------------------------------------------------------------------

    def _get_executor(self) -> WorkerPool:
        pool = self._executor
        if pool is None:
            with self._lock:
                pool = self._executor
                if pool is None:
                    pool = WorkerPool(self.max_workers, self._thread_name_prefix)
                    self._executor = pool
                    self._stop_when_collected("pool", pool)
        return pool

    def _get_timer(self) -> TimerQueue:
        # The timer of the clock installed now: a flow made before a test installed its
        # fake clock (or kept after it) arms its new timers on the clock of the moment.
        clock = current_clock()
        timer = self._timer
        if timer is None or self._timer_clock is not clock:
            with self._lock:
                timer = self._timer
                if timer is None or self._timer_clock is not clock:
                    if timer is not None:
                        self._old_timers.append(timer)
                        n = len(self._old_timers)
                        self._finalizers[f"timer-{n}"] = self._finalizers.pop("timer")
                    timer = clock.timer(f"routilux-timer-{self.flow_id}")
                    self._timer, self._timer_clock = timer, clock
                    self._stop_when_collected("timer", timer)
        return timer

    def _stop_when_collected(self, kind: str, resource: WorkerPool | TimerQueue) -> None:
        # With the lock held: a flow dropped without shutdown() stops the threads of its
        # pool or timer when it is collected (neither refers back to the flow). The
        # finalizer of a resource this one replaces is no longer needed.
        old = self._finalizers.pop(kind, None)
        if old is not None:
            old.detach()
        self._finalizers[kind] = weakref.finalize(self, resource.shutdown, False)

    def _get_async_gate(self) -> AsyncGate:
        # The bound on this flow's coroutine activations, across all loops they run on.
        gate = self._async_gate
        if gate is None:
            from routilux.engine._async import AsyncGate

            with self._lock:
                gate = self._async_gate
                if gate is None:
                    gate = self._async_gate = AsyncGate(self.max_async)
        if gate.limit != self.max_async:
            gate.limit = self.max_async
        return gate

    def _plugin_manager(self) -> PluginManager:
        if self._plugins is not None:
            return self._plugins
        from routilux.plugins._manager import default_plugin_manager

        return default_plugin_manager()

    @property
    def execution_tracker(self) -> ExecutionTracker | None:
        """
        The execution tracker of the job this flow started most recently (``None`` before
        any). Each job keeps its own in ``job_state.execution_tracker``.
        """
        run = self._last_run
        return None if run is None else run.job_state.execution_tracker

    # -- jobs -----------------------------------------------------------------------

    def _check_job(self, job_state: JobState) -> None:
        if job_state.flow_id != self.flow_id:
            msg = f"JobState flow_id {job_state.flow_id!r} does not match flow {self.flow_id!r}"
            raise FlowMismatchError(msg)

    def _new_run(self, job_state: JobState, sequential: bool) -> JobRun:
        run = JobRun(self, job_state, sequential, self._plugin_manager().relay(), self._host)
        job_state.attach_run(run)
        job_state.execution_tracker = run.tracker
        self._last_run = run
        return run

    def _listen(self, run: JobRun, on_event: Callable[[StreamEvent], None]) -> None:
        # The job's hooks call ``on_event`` with each of its events (see _stream).
        from routilux.engine._hooks import install_hooks
        from routilux.engine._stream import EventTap

        install_hooks(run, self._plugin_manager().relay(EventTap(on_event)))

    def _job_active(self, run: JobRun) -> None:
        with self._active_cond:
            self._active.add(run)

    def _job_settled(self, run: JobRun) -> None:
        with self._active_cond:
            self._active.discard(run)
            if not self._active:
                self._active_cond.notify_all()

    def _run_of(self, job_state: JobState) -> JobRun | None:
        run = job_state.run_state
        return run if isinstance(run, JobRun) and run.flow is self else None

    def wait_for_completion(self, timeout: float | None = None) -> bool:
        """
        Wait until no job of this flow is running (paused jobs do not count).

        Returns:
            ``True`` when none is running, ``False`` if the timeout passed first.
        """
        with self._active_cond:
            return self._active_cond.wait_for(lambda: not self._active, timeout)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """
        Release the worker pool and the timer; with ``wait``, first wait for the
        running jobs. A later job creates a new pool.
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:  # one deadline for the whole shutdown
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if wait:
            self.wait_for_completion(timeout)
        with self._lock:
            pool, self._executor = self._executor, None
            timers = [*self._old_timers, self._timer]
            self._timer, self._timer_clock = None, None
            self._old_timers.clear()
        if pool is not None:
            pool.shutdown(wait=wait, timeout=left())
        for timer in timers:
            if timer is not None:
                timer.shutdown(wait=wait, timeout=left())


class _Host:
    """
    A flow's :class:`RunHost`: its resources as one of its runs uses them.
    """

    __slots__ = ("flow",)

    def __init__(self, flow: FlowRuntime) -> None:
        self.flow = flow

    def pool(self) -> WorkerPool:
        return self.flow._get_executor()

    def timer(self) -> TimerQueue:
        return self.flow._get_timer()

    def started_timer(self) -> TimerQueue | None:
        return self.flow._timer

    def async_gate(self) -> AsyncGate:
        return self.flow._get_async_gate()

    def job_settled(self, run: JobRun) -> None:
        self.flow._job_settled(run)

    def released_run(self, sequential: bool) -> ReleasedRun:
        shared = self.flow._released
        released = shared.get(sequential)
        if released is None:
            released = shared[sequential] = ReleasedRun(self.flow, sequential, None)
        return released

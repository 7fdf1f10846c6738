"""
Flow: the static definition of a workflow, and the entry points that run its jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from routilux._util._checks import require_mapping
from routilux.engine._deadlines import arm_deadline
from routilux.engine._flow_stream import FlowStreams
from routilux.engine._options import ReopenKwargs, RunKwargs, RunOptions, documented
from routilux.engine._released import ReleasedRun
from routilux.engine._runtime import FlowRuntime
from routilux.engine._steps import check_names, emit_deferred
from routilux.exceptions import (
    ConfigurationError,
    ExecutionContextError,
)
from routilux.model._context import Frame, reset_frame, set_frame
from routilux.model._definition import (
    check_strategy,
    entry_slot,
)
from routilux.model._job_state import JobState
from routilux.model._lifecycle import Action, next_status, transition


if TYPE_CHECKING:
    from typing_extensions import Unpack

    from routilux.engine._run import JobRun


_H = TypeVar("_H", covariant=True)


class _JobBackend(Protocol[_H]):
    # What ``Flow.submit(..., backend=...)`` delegates to (PostgresBackend, DaskJobExecutor):
    # it returns its JobHandle (routilux.store.JobHandle).
    def submit(
        self,
        flow: Flow,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        *,
        execution_strategy: str | None = None,
        checkpoint_every: int = ...,
    ) -> _H: ...


__all__ = ["Flow"]


def _check_timeout(timeout: Any) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        msg = f"timeout must be a number of seconds >= 0 or None, got {timeout!r}"
        raise ConfigurationError(msg, name="timeout", value=timeout)


class Flow(FlowStreams, FlowRuntime):
    """
    A workflow: routines by id and the connections from their events to their slots, and
    the jobs that run it.

    A Flow is a definition (:class:`~routilux.model.FlowDefinition`). Running a job
    (:meth:`execute`, :meth:`submit`) never changes it, so one Flow runs any number of jobs
    at once, from any number of threads; each job's state lives in its own
    :class:`~routilux.job_state.JobState`. The Flow owns one worker pool shared by its
    jobs, created on first use and released by :meth:`shutdown` (or by leaving a ``with``
    block).

    Args:
        flow_id: The flow's id (a new UUID when empty).
        execution_strategy: ``"sequential"`` (one activation of a job at a time, in FIFO
            order) or ``"concurrent"`` (up to ``max_workers`` at once across the jobs).
        max_workers: Worker threads for sync handlers (forced to 1 when sequential).
        max_async: How many ``async def`` activations may run at once.
        history_limit: Give each job a bounded history (see ``JobState.history_limit``).
        plugins: A plugin manager of this flow's own instead of the process-wide one.
        thread_name_prefix: Prefix of the worker threads' names.

    Raises:
        ConfigurationError: An unknown strategy or a bad worker count (a ``ValueError``).
    """

    def _start_job(
        self, entry_routine_id: str, entry_params: dict[str, Any] | None, options: RunOptions
    ) -> JobRun:
        require_mapping(entry_params, "entry_params", "parameter names to values")
        entry = self._routine(entry_routine_id, "Entry")
        strategy = check_strategy(options.execution_strategy or self.execution_strategy)
        job_state = options.job_state
        if job_state is None:
            job_state = JobState(self.flow_id, history_limit=self.history_limit)
        else:
            if not job_state.flow_id:
                job_state.flow_id = self.flow_id
            self._check_job(job_state)
            run = job_state.run_state
            if run is not None and not run.finished and not getattr(run, "paused", False):
                msg = f"{job_state!r} is already running; pass a new JobState to execute"
                raise ExecutionContextError(msg)
            next_status(job_state.status, Action.START, job_id=job_state.job_id)
        if options.output_handler is not None:
            job_state.output_handler = options.output_handler
        params = dict(entry_params or {})
        job_state.current_routine_id = entry_routine_id
        run = self._new_run(job_state, strategy == "sequential")
        if options.on_event is not None:
            self._listen(run, options.on_event)
        run.configure(options)
        transition(job_state, Action.START)
        self._job_active(run)
        slot = entry_slot(entry_routine_id, entry, options.entry_slot)
        own = not callable(slot.merge_strategy)  # else a merge function is given them too
        if own:
            job_state.record_own(entry_routine_id, "start", params)
        else:
            job_state.record_execution(entry_routine_id, "start", params)
        run.tracker.set_entry(entry_routine_id, params, own=own)
        run.log.debug("job_started", entry=entry_routine_id)
        with run.lock:
            # Held until queue_entry: a listener of job_started that pauses and resumes the
            # job hands it to the pool, where a worker must not finish it before its entry.
            run.holds += 1
        if run.hooks is not None:
            run.hooks.call("routilux_job_started", flow=self, job_state=job_state)
        run.queue_entry(entry_routine_id, slot, params)
        arm_deadline(run, options.deadline)
        return run

    @documented()
    def execute(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        timeout: float | None = None,
        **options: Unpack[RunKwargs],
    ) -> JobState:
        """
        Run a job: call the entry routine's ``trigger`` slot with ``entry_params`` and wait
        until the job's work is done, it pauses, it is cancelled, or ``timeout`` passes.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: The data given to the trigger slot.
            execution_strategy: The strategy of this job only (the flow's by default).
            timeout: Seconds to wait at most; then the running JobState is returned.
            {options}

        Returns:
            The job's JobState: ``completed``, ``failed``, ``paused``, ``cancelled``, or
            ``running`` when the timeout passed first.

        Raises:
            RoutineNotFoundError: No routine has that id.
            ExecutionContextError: Called on a thread that runs an asyncio event loop
                (use ``await flow.aexecute(...)`` there).
        """
        _refuse_on_event_loop()
        _check_timeout(timeout)
        run_options = RunOptions.of("execute", options, execution_strategy=execution_strategy)
        run = self._start_job(entry_routine_id, entry_params, run_options)
        pool = self._executor
        on_own_worker = pool is not None and pool.owns_current_thread()
        if timeout is None and (run.sequential or on_own_worker):
            run.drain()
        else:
            run.schedule()
            run.wait_settled(timeout)
        return run.job_state

    @overload
    def submit(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        backend: None = None,
        **options: Unpack[RunKwargs],
    ) -> JobState: ...

    @overload
    def submit(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        checkpoint_every: int = 0,
        backend: _JobBackend[_H],
    ) -> _H: ...

    @documented()
    def submit(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        backend: _JobBackend[_H] | None = None,
        **options: Unpack[RunKwargs],
    ) -> JobState | _H:
        """
        Start a job like :meth:`execute` (same arguments but ``timeout``) and return its
        running JobState at once; wait for it with ``job_state.wait_for_completion()``.

        With ``backend`` (a :class:`routilux.postgres.PostgresBackend` or a
        :class:`routilux.dask_executor.DaskJobExecutor`), the job runs elsewhere: this returns
        ``backend.submit(self, entry_routine_id, entry_params, ...)``, a
        :class:`~routilux.store.JobHandle`; only ``execution_strategy`` and
        ``checkpoint_every`` (by default the backend's: every activation) apply then.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: The data given to the trigger slot.
            execution_strategy: The strategy of this job only (the flow's by default).
            backend: Where to run the job instead of this process.
            {options}

        .. versionchanged:: 0.10 ``backend``.
        """
        run_options = RunOptions.of("submit", options, execution_strategy=execution_strategy)
        if backend is not None:
            o = run_options
            if o.job_state is not None or o.output_handler is not None or o.checkpoint or o.control:
                msg = "with backend=, job_state, output_handler, checkpoint, control do not apply"
                raise ConfigurationError(msg, name="backend", value=backend)
            if o.deadline is not None:
                msg = "with backend=, deadline does not apply (the backend runs the job)"
                raise ConfigurationError(msg, name="backend", value=backend)
            more = {"checkpoint_every": o.checkpoint_every} if o.checkpoint_every else {}
            return backend.submit(
                self, entry_routine_id, entry_params, execution_strategy=execution_strategy, **more
            )
        run = self._start_job(entry_routine_id, entry_params, run_options)
        run.schedule()
        return run.job_state

    @documented()
    async def aexecute(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        timeout: float | None = None,
        on_cancel: str = "cancel",
        cancel_timeout: float = 30.0,
        **options: Unpack[RunKwargs],
    ) -> JobState:
        """
        Run a job like :meth:`execute` (same arguments), awaiting it on the running event
        loop instead of blocking a thread.

        ``async def`` handlers of the job run as tasks on this same loop, so they share the
        application's loop-bound clients; sync handlers run on the flow's worker threads.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: The data given to the trigger slot.
            execution_strategy: The strategy of this job only (the flow's by default).
            timeout: Seconds to wait at most; then the running JobState is returned.
            on_cancel: What cancelling the awaiting task does to the job: ``"cancel"``
                (the default: running coroutines see ``CancelledError``, queued work is
                dropped) or ``"pause"`` (running coroutines are re-queued and the job can
                be resumed).
            cancel_timeout: Seconds the cancelled awaiting task waits at most for the
                job's running handlers to stop before it re-raises ``CancelledError``.
            {options}

        Returns:
            The job's JobState, as :meth:`execute` returns it.

        Raises:
            RoutineNotFoundError: No routine has that id.
            ConfigurationError: ``on_cancel`` is neither ``"cancel"`` nor ``"pause"``.

        .. versionadded:: 0.1
        """
        import asyncio

        from routilux.engine._async import wait_for_job

        if on_cancel not in ("cancel", "pause"):
            msg = f"on_cancel must be 'cancel' or 'pause', got {on_cancel!r}"
            raise ConfigurationError(msg, name="on_cancel", value=on_cancel)
        _check_timeout(timeout)
        loop = asyncio.get_running_loop()
        run_options = RunOptions.of("aexecute", options, execution_strategy=execution_strategy)
        run = self._start_job(entry_routine_id, entry_params, run_options)
        run.loop = loop
        run.schedule()
        await wait_for_job(run, timeout, on_cancel, cancel_timeout)
        return run.job_state

    # -- pause, resume, cancel --------------------------------------------------------

    def pause(
        self, job_state: JobState, reason: str = "", checkpoint: dict[str, Any] | None = None
    ) -> None:
        """
        Pause one job: nothing new of it starts, its queued activations move into
        ``job_state.pending_tasks``, one pause point is recorded and its status becomes
        ``paused``. Running handlers finish; called from outside the job, this waits for
        them (from inside one of its handlers it does not: ``job_state.wait_settled()``
        waits until none runs). Callable from any thread. A running, pending, paused or
        completed job can be paused (see the lifecycle table in ``routilux.lifecycle``).
        Running ``async def`` handlers are cancelled and their activations go back into
        ``pending_tasks`` first, to run again on resume (at least once; see
        ``docs/async.md``); on an event loop's thread the call does not wait for them.

        Raises:
            FlowMismatchError: The JobState belongs to another flow (a ``ValueError``).
            JobStateError: The job is failed or cancelled (a ``ValueError``).
        """
        self._check_job(job_state)
        with job_state.lock:
            # Under the job's lock: a concurrent resume may be giving the job a new run.
            run = self._run_of(job_state)
            if run is None:
                job_state.record_pause(
                    reason,
                    checkpoint,
                    pending_tasks_count=len(job_state.pending_tasks),
                    active_tasks_count=0,
                    queue_size=0,
                )
                return
        run.pause(reason, checkpoint)

    @documented(reopen=True)
    def resume(self, job_state: JobState, **options: Unpack[ReopenKwargs]) -> JobState:
        """
        Resume a job (paused here, or loaded from data on any host): emit its deferred
        events first, then queue its pending activations. Returns the same JobState,
        ``running``; the flow's pool finishes it. Resuming a job this flow runs does
        nothing.

        Args:
            job_state: The job to resume.
            {options}

        Raises:
            FlowMismatchError: The JobState belongs to another flow.
            RoutineNotFoundError: A routine the job names (its entry, a pending activation,
                a deferred event) is not in this flow; nothing changed. ``SlotNotFoundError``
                and ``EventNotFoundError`` likewise for slots and events.
            JobStateError: The job is cancelled, or failed (use :meth:`retry`).
        """
        return self._reopen(job_state, Action.RESUME, RunOptions.of("resume", options, reopen=True))

    @documented(reopen=True)
    def retry(self, job_state: JobState, **options: Unpack[ReopenKwargs]) -> JobState:
        """
        Run a failed job again, as a new attempt of the same job: its deferred events
        first, then its ``failed_tasks`` (the activations that failed, and the work that was
        queued or pending when it failed) in their original order, each with a fresh
        retry budget. The history and the routine states go on; the retry is recorded in
        the history (a ``retry`` record of the entry routine). Returns the same JobState,
        ``running``; it ends ``completed`` or ``failed`` again.

        Args:
            job_state: The failed job.
            {options}

        Raises:
            FlowMismatchError: The JobState belongs to another flow.
            RoutineNotFoundError: A routine the job names is not in this flow.
            JobStateError: The job is not failed, or its failed run still has handlers
                running.

        .. versionadded:: 0.10
        """
        return self._reopen(job_state, Action.RETRY, RunOptions.of("retry", options, reopen=True))

    def _reopen(self, job_state: JobState, action: Action, options: RunOptions) -> JobState:
        self._check_job(job_state)
        with job_state.lock:
            next_status(job_state.status, action, job_id=job_state.job_id)
            check_names(self, job_state, action)
            # Under the job's lock, so that concurrent resumes make at most one new run.
            run = self._run_of(job_state)
            if run is None:
                released = job_state.run_state
                if isinstance(released, ReleasedRun) and released.flow is self:
                    # A finished job: a new run that takes over what the old one kept.
                    tracker = job_state.execution_tracker
                    run = self._new_run(job_state, released.sequential)
                    if tracker is not None:
                        run.tracker = job_state.execution_tracker = tracker
                        tracker.thaw()
                    run.buffers = released.buffers or {}
                else:
                    run = self._new_run(job_state, self.execution_strategy == "sequential")
                run.paused = True
        if options.on_event is not None:
            self._listen(run, options.on_event)
        if options.checkpoint is not None or options.control is not None:
            run.configure(options)
        if not run.reopen(action):
            return job_state
        arm_deadline(run, options.deadline)
        self._job_active(run)
        try:
            retry = action is Action.RETRY
            deferred, tasks = job_state.take_resume_work(failed=retry)
            if retry:
                entry = job_state.current_routine_id
                job_state.record_own(entry or "", "retry", {"tasks": len(tasks)})
            token = set_frame(Frame(run, None))
            try:
                for item in deferred:
                    emit_deferred(self, item)
            finally:
                reset_frame(token)
            acts = [run.from_pending(t, fresh=retry) for t in tasks]
            if acts:
                run.enqueue(acts)
        finally:
            run.release_hold()
        return job_state

    def cancel(self, job_state: JobState, reason: str = "") -> None:
        """
        Cancel one job for good: drop its queued work (also the activations a pause set
        aside in ``pending_tasks``) and waiting retries, mark it ``cancelled`` and wake
        whoever waits for it. Running sync handlers finish; running ``async def`` handlers
        are cancelled (they see ``CancelledError`` at their next ``await``); nothing of the
        job ever starts again (pause, resume and retry of it raise ``JobStateError``).
        Cancelling a cancelled job does nothing.

        Raises:
            FlowMismatchError: The JobState belongs to another flow.
            JobStateError: The job failed (it runs nothing to cancel; it stays failed).
        """
        self._check_job(job_state)
        with job_state.lock:
            run = self._run_of(job_state)
            if run is None:
                status = job_state.status
                if next_status(status, Action.CANCEL, job_id=job_state.job_id) != status:
                    job_state.drop_pending_tasks()
                    job_state.record_cancel(reason)
                return
        run.cancel(reason)


def _refuse_on_event_loop() -> None:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    msg = (
        "Flow.execute() blocks and cannot run on a thread that runs an asyncio event loop; "
        "use 'await flow.aexecute(...)' there"
    )
    raise ExecutionContextError(msg)

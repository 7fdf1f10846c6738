"""
The streaming entry points of a Flow: :meth:`FlowStreams.stream`, :meth:`FlowStreams.astream`
and :meth:`FlowStreams.stream_resume` (see ``docs/streaming.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from routilux.engine._options import RunOptions, documented
from routilux.engine._stream import DEFAULT_BUFFER, EventBuffer, EventStream
from routilux.exceptions import ConfigurationError, ExecutionContextError
from routilux.model._job_state import JobState
from routilux.model._loop import on_event_loop
from routilux.model._stream_event import EventKind


if TYPE_CHECKING:
    from collections.abc import Iterable

    from typing_extensions import Unpack

    from routilux.engine._flow import Flow
    from routilux.engine._options import ReopenKwargs, RunKwargs

__all__ = ["FlowStreams"]


def _buffer(
    job_state: JobState, size: Any, kinds: Iterable[str] | None, options: dict[str, Any]
) -> EventBuffer:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        msg = f"buffer_size must be an int >= 1, got {size!r}"
        raise ConfigurationError(msg, name="buffer_size", value=size)
    wanted = None
    if kinds is not None:
        wanted = frozenset([kinds] if isinstance(kinds, str) else kinds)
        unknown = sorted(str(k) for k in wanted - set(EventKind))
        if unknown:
            known = ", ".join(k.value for k in EventKind)
            msg = f"unknown event kinds {unknown} (known: {known})"
            raise ConfigurationError(msg, name="kinds", value=kinds)
    if options.get("on_event") is not None:
        msg = "a stream takes the job's events itself: on_event does not apply"
        raise ConfigurationError(msg, name="on_event", value=options["on_event"])
    return EventBuffer(job_state, size, wanted)


def _job_state(flow: Flow, options: dict[str, Any]) -> JobState:
    given: JobState | None = options.pop("job_state", None)
    if given is None:
        return JobState(flow.flow_id, history_limit=flow.history_limit)
    return given


class FlowStreams:
    """
    The methods of :class:`~routilux.flow.Flow` that run a job and yield its events.
    """

    @documented()
    def stream(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        buffer_size: int = DEFAULT_BUFFER,
        kinds: Iterable[str] | None = None,
        **options: Unpack[RunKwargs],
    ) -> EventStream:
        """
        Start a job like :meth:`submit` and return its events as they happen:
        ``for event in flow.stream("source", {"n": 3}): print(event)``.

        Each item is a :class:`~routilux.StreamEvent`; the last one is ``job_finished``
        (or ``paused``, once no handler of the job runs) and carries the JobState. The
        stream holds at most ``buffer_size`` events: a consumer slower than the job makes
        the job's handlers wait (back-pressure), and no event is dropped (see
        ``docs/streaming.md`` for the producers that never wait). Leaving the loop early
        does not stop the job; ``flow.cancel(stream.job_state)`` does.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: The data given to the trigger slot.
            execution_strategy: The strategy of this job only (the flow's by default).
            buffer_size: How many events the stream holds at most.
            kinds: Only events of these kinds (for example ``{"output"}``), and the last
                event; all by default.
            {options}

        Returns:
            An :class:`~routilux.EventStream` (also an async iterator),
            whose ``job_state`` is the job's.

        Raises:
            RoutineNotFoundError: No routine has that id.
            ConfigurationError: A bad ``buffer_size``, an unknown kind, or ``on_event``
                given.
            ExecutionContextError: Called on a thread that runs an event loop (use
                :meth:`astream` there).

        .. versionadded:: 0.10
        """
        if on_event_loop():
            msg = "Flow.stream() on an event loop's thread: use 'async for e in flow.astream(...)'"
            raise ExecutionContextError(msg)
        flow = cast("Flow", self)
        kwargs: dict[str, Any] = dict(options)
        job_state = _job_state(flow, kwargs)
        buffer = _buffer(job_state, buffer_size, kinds, kwargs)
        kwargs.update(job_state=job_state, on_event=buffer)
        flow.submit(entry_routine_id, entry_params, execution_strategy, **kwargs)
        return EventStream(job_state, buffer)

    @documented()
    def astream(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        *,
        buffer_size: int = DEFAULT_BUFFER,
        kinds: Iterable[str] | None = None,
        **options: Unpack[RunKwargs],
    ) -> EventStream:
        """
        Start a job like :meth:`aexecute` and return its events as an async iterator:
        ``async for event in flow.astream("source", {"n": 3}): ...``. Call it from a
        coroutine: the job's ``async def`` handlers run on the calling loop, as under
        :meth:`aexecute`. The events are those of :meth:`stream`; producers on the loop
        itself never wait, the others wait while the buffer is full.

        Args:
            entry_routine_id: The routine whose ``trigger`` slot starts the job.
            entry_params: The data given to the trigger slot.
            execution_strategy: The strategy of this job only (the flow's by default).
            buffer_size: How many events the stream holds at most.
            kinds: Only events of these kinds (for example ``{"output"}``), and the last
                event; all by default.
            {options}

        Raises:
            RoutineNotFoundError: No routine has that id.
            ConfigurationError: A bad ``buffer_size``, an unknown kind, or ``on_event``
                given.
            ExecutionContextError: No event loop runs on the calling thread.

        .. versionadded:: 0.10
        """
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            msg = "Flow.astream() needs a running event loop: call it from a coroutine"
            raise ExecutionContextError(msg) from None
        flow = cast("Flow", self)
        kwargs: dict[str, Any] = dict(options)
        job_state = _job_state(flow, kwargs)
        buffer = _buffer(job_state, buffer_size, kinds, kwargs)
        kwargs.update(job_state=job_state, on_event=buffer)
        run_options = RunOptions.of("astream", kwargs, execution_strategy=execution_strategy)
        run = flow._start_job(entry_routine_id, entry_params, run_options)
        run.loop = loop
        run.schedule()
        return EventStream(job_state, buffer)

    @documented(reopen=True)
    def stream_resume(
        self,
        job_state: JobState,
        *,
        buffer_size: int = DEFAULT_BUFFER,
        kinds: Iterable[str] | None = None,
        **options: Unpack[ReopenKwargs],
    ) -> EventStream:
        """
        Resume a job like :meth:`resume` and return its events from then on, as
        :meth:`stream` does: first ``resumed``, then what the job does, last
        ``job_finished`` (or ``paused`` again). Iterate it with ``for`` or ``async for``.

        Args:
            job_state: The job to resume (paused here, or loaded).
            buffer_size: How many events the stream holds at most.
            kinds: Only events of these kinds (for example ``{"output"}``), and the last
                event; all by default.
            {options}

        Raises:
            JobStateError: The job is cancelled or failed (use ``flow.retry(job,
                on_event=...)`` for a failed one).
            ConfigurationError: A bad ``buffer_size``, an unknown kind, or ``on_event``
                given.

        .. versionadded:: 0.10
        """
        kwargs: dict[str, Any] = dict(options)
        buffer = _buffer(job_state, buffer_size, kinds, kwargs)
        stream = EventStream(job_state, buffer)
        cast("Flow", self).resume(job_state, on_event=buffer, **kwargs)
        return stream

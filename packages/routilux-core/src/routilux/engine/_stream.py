"""
A job's events as a stream: the tap that turns the job's hook calls into
:class:`~routilux.model._stream_event.StreamEvent` objects, and the bounded buffer and
iterator behind ``Flow.stream`` and ``Flow.astream``.

The tap is one more implementation of the job hooks (``routilux.hookspecs``), added to the
job's own hook relay: the events are the hook calls the job's bookkeeping makes, in the
order it makes them, on the thread where it makes them.

The buffer holds at most ``maxsize`` events. A producer waits while it is full (the job's
back-pressure), except where waiting could stall the job or its consumer: with the job's
lock held (outputs and status changes are booked under it), on an event-loop thread, on the
consumer's own thread, and while the job is not running (paused, finished, cancelled).
Such a producer appends beyond the bound; the next producer that may wait waits until the
consumer has taken the buffer back under it. Nothing is ever dropped while the consumer
listens; once it closes the stream, events are ignored.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from routilux.model._loop import on_event_loop
from routilux.model._stream_event import EventKind, StreamEvent


if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from routilux.model._job_state import JobState

__all__ = ["DEFAULT_BUFFER", "EventBuffer", "EventStream", "EventTap"]

DEFAULT_BUFFER = 1000
"""How many events a stream buffers at most by default."""

_RESUMED_FROM = frozenset(("paused", "completed", "failed"))
"""The statuses a job leaves for ``running`` when it is resumed (or retried)."""


class EventTap:
    """
    The job hooks that make :class:`StreamEvent` objects and hand each to ``sink`` (an
    :class:`EventBuffer`, or the ``on_event`` callable of a run).
    """

    def __init__(self, sink: Callable[[StreamEvent], None]) -> None:
        self.sink = sink
        self._status = sink.status_changed if isinstance(sink, EventBuffer) else None

    def _put(
        self,
        kind: EventKind,
        job_state: JobState,
        routine_id: str | None,
        data: dict[str, Any],
        final: bool = False,
    ) -> None:
        event = StreamEvent(
            kind.value,
            job_state.job_id,
            routine_id,
            time.time(),
            data,
            job_state if final else None,
        )
        self.sink(event)

    def routilux_job_started(self, job_state: JobState) -> None:
        self._put(
            EventKind.JOB_STARTED,
            job_state,
            job_state.current_routine_id,
            {"flow_id": job_state.flow_id},
        )

    def routilux_activation_started(
        self, job_state: JobState, routine_id: str | None, slot_name: str, attempt: int
    ) -> None:
        data = {"slot": slot_name, "attempt": attempt}
        self._put(EventKind.ACTIVATION_STARTED, job_state, routine_id, data)

    def routilux_event_emitted(
        self, job_state: JobState, routine_id: str | None, event_name: str, data: dict[str, Any]
    ) -> None:
        self._put(EventKind.EMITTED, job_state, routine_id, {"event": event_name, "data": data})

    def routilux_output_sent(
        self, job_state: JobState, routine_id: str | None, output_type: str, data: dict[str, Any]
    ) -> None:
        data = {"output_type": output_type, "data": data}
        self._put(EventKind.OUTPUT, job_state, routine_id, data)

    def routilux_activation_failed(
        self,
        job_state: JobState,
        routine_id: str | None,
        slot_name: str,
        error: BaseException,
        strategy: str,
    ) -> None:
        if strategy in ("requeue", "cancel"):
            return  # a coroutine the job's pause or cancel stopped: not an error of it
        data = {
            "slot": slot_name,
            "error_type": type(error).__name__,
            "message": str(error),
            "strategy": strategy,
        }
        self._put(EventKind.ERROR, job_state, routine_id, data)
        if strategy == "retry":
            self._put(EventKind.RETRY_SCHEDULED, job_state, routine_id, {"slot": slot_name})

    def routilux_job_status_changed(self, job_state: JobState, old: str, new: str) -> None:
        # Called with the job's lock held.
        if self._status is not None:
            self._status(new)
        if new == "running" and old in _RESUMED_FROM:
            self._put(EventKind.RESUMED, job_state, None, {"from": old})
        elif new == "paused":
            self._when_settled(job_state)

    def _when_settled(self, job_state: JobState) -> None:
        # The ``paused`` event comes once no handler of the job runs (a handler still
        # running may emit more first).
        from routilux.engine._run import JobRun

        run = job_state.run_state
        if not isinstance(run, JobRun):
            self._paused(job_state)
            return
        run.waiters.append(
            (lambda: not run.paused or run.is_settled(), lambda: self._paused_run(run))
        )

    def _paused_run(self, run: Any) -> None:
        if run.paused:
            self._paused(run.job_state)

    def _paused(self, job_state: JobState) -> None:
        points = job_state.pause_points
        reason = points[-1].get("reason", "") if points else ""
        data = {"reason": reason, "pending": len(job_state.pending_tasks)}
        self._put(EventKind.PAUSED, job_state, None, data, final=True)

    def routilux_job_finished(self, job_state: JobState) -> None:
        data = {"status": job_state.status}
        self._put(EventKind.JOB_FINISHED, job_state, None, data, final=True)


class EventBuffer:
    """
    The bounded FIFO between a job's producers and a stream's consumer (see the module
    docstring for who waits when it is full).

    Args:
        job_state: The job whose lock tells which producers may wait.
        maxsize: The bound (at least 1).
        kinds: Keep only events of these kinds (and the last event); all by default.
    """

    def __init__(
        self,
        job_state: JobState,
        maxsize: int = DEFAULT_BUFFER,
        kinds: frozenset[str] | None = None,
    ) -> None:
        self.maxsize = maxsize
        self._kinds = kinds
        #: The most events the buffer held at once.
        self.peak = 0
        self._job_lock: Any = job_state.lock
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[StreamEvent] = deque()
        self._closed = False
        self._running = True
        self._consumer: int | None = threading.get_ident()
        self._wake: Callable[[], None] | None = None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _may_wait(self) -> bool:
        # Outside the job's lock, off any event loop, not the consumer itself.
        return (
            not self._job_lock._is_owned()
            and threading.get_ident() != self._consumer
            and not on_event_loop()
        )

    def __call__(self, event: StreamEvent) -> None:
        """
        Append ``event``, first waiting while the buffer is full if this producer may.
        """
        if self._kinds is not None and event.kind not in self._kinds and not event.terminal:
            return
        may_wait = self._may_wait()
        with self._cond:
            if may_wait:
                self._cond.wait_for(
                    lambda: self._closed or not self._running or len(self._items) < self.maxsize
                )
            if self._closed:
                return
            self._items.append(event)
            self.peak = max(self.peak, len(self._items))
            self._cond.notify_all()
            wake, self._wake = self._wake, None
        if wake is not None:
            wake()

    def status_changed(self, status: str) -> None:
        """
        The job's status changed: producers wait on a full buffer only while it runs.
        """
        with self._cond:
            self._running = status == "running"
            self._cond.notify_all()

    def get(self) -> StreamEvent | None:
        """
        Take the oldest event, waiting for one (the calling thread is the consumer);
        ``None`` once the buffer is closed.
        """
        with self._cond:
            self._consumer = threading.get_ident()
            self._cond.wait_for(lambda: self._closed or bool(self._items))
            return self._take_locked()

    async def aget(self) -> StreamEvent | None:
        """
        Take the oldest event, awaiting one on the running loop; ``None`` once the buffer
        is closed.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                self._consumer = None
                if self._closed or self._items:
                    return self._take_locked()
                ready: asyncio.Future[None] = loop.create_future()
                self._wake = functools.partial(_call_soon, loop, ready)
            await ready

    def _take_locked(self) -> StreamEvent | None:
        if self._closed:
            return None
        event = self._items.popleft()
        self._cond.notify_all()
        return event

    def close(self) -> None:
        """
        Stop listening: drop what is buffered, release waiting producers, ignore the rest.
        """
        with self._cond:
            self._closed = True
            self._items.clear()
            wake, self._wake = self._wake, None
            self._cond.notify_all()
        if wake is not None:
            wake()


def _call_soon(loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
    # Wake an awaiting consumer from any thread (a closed loop has no consumer left).
    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(wake)


class EventStream:
    """
    The events of one job, as they happen: an iterator (``for event in stream``) and an
    async iterator (``async for event in stream``), ending after the event that settles
    the job (``job_finished``, or ``paused`` once no handler runs), which carries its
    JobState.

    Leaving the loop early does not stop the job: it runs on, and its events are no longer
    kept. Call :meth:`close` (or use the stream as a context manager) to stop listening at
    once; ``flow.cancel(stream.job_state)`` stops the job.
    """

    def __init__(self, job_state: JobState, buffer: EventBuffer) -> None:
        #: The job streamed.
        self.job_state = job_state
        #: The buffer between the job and this stream (its ``maxsize`` and ``peak``).
        self.buffer = buffer
        self._done = False

    def __repr__(self) -> str:
        return f"EventStream[{self.job_state.job_id}]"

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> StreamEvent:
        event = None if self._done else self.buffer.get()
        if event is None:
            raise StopIteration
        return self._seen(event)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        event = None if self._done else await self.buffer.aget()
        if event is None:
            raise StopAsyncIteration
        return self._seen(event)

    def _seen(self, event: StreamEvent) -> StreamEvent:
        if event.terminal:
            self.close()
        return event

    def close(self) -> None:
        """
        Stop listening (the job runs on); the iteration ends, also one waiting in
        another thread.
        """
        self._done = True
        self.buffer.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A stream dropped unfinished must not keep the job waiting on its buffer.
        buffer = getattr(self, "buffer", None)
        if buffer is not None:
            buffer.close()

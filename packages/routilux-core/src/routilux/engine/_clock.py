"""
The engine's clock: where it reads time and schedules timers, one mechanism for all of
them (retry back-offs, slot timeouts, job deadlines).

The engine never calls ``time.monotonic`` for a timer nor sleeps: it asks
:func:`current_clock`. The real clock (:class:`RealClock`) gives each flow one timer thread
(:class:`ThreadTimer`, a heap of due times); the testing kit's ``routilux_clock`` fixture
installs a fake clock with :func:`install_clock`, whose timers run when the test advances
it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from routilux._util._log import logger, repr_of
from routilux.exceptions import SchedulerShutdownError


__all__ = [
    "Clock",
    "RealClock",
    "ThreadTimer",
    "TimerQueue",
    "current_clock",
    "install_clock",
    "new_handle",
]


_handles = itertools.count(1)
_handles_lock = threading.Lock()


def new_handle() -> int:
    """
    A timer handle never given before in this process, by any timer of any clock: a flow
    whose clock changed cancels its older timers' handles on its new timer, where they
    match nothing (the callbacks check that they are still wanted).
    """
    with _handles_lock:
        return next(_handles)


class TimerQueue(Protocol):
    """
    Functions to call after a delay (one per flow): what retries, timeouts and deadlines
    wait on, never a worker.
    """

    def call_later(self, delay: float, callback: Callable[[int], Any]) -> int:
        """
        Call ``callback(handle)`` after ``delay`` seconds; return the handle.

        Raises:
            SchedulerShutdownError: The timer was shut down.
        """

    def cancel(self, handle: int) -> None:
        """Make sure ``handle``'s callback is not called (a no-op once it has been)."""

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Drop the pending callbacks and stop; with ``wait``, wait for a running one."""


class Clock(Protocol):
    """
    Where the engine reads time and gets its timers.
    """

    def monotonic(self) -> float:
        """Seconds of a clock that never goes back (for intervals)."""

    def time(self) -> float:
        """The wall clock, as epoch seconds."""

    def timer(self, name: str) -> TimerQueue:
        """A new timer queue (one per flow; ``name`` names its thread, if it has one)."""


class RealClock:
    """
    The clock of the process: ``time.monotonic``, ``time.time`` and a timer thread per
    flow.
    """

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def timer(self, name: str) -> TimerQueue:
        """A :class:`ThreadTimer` named ``name``."""
        return ThreadTimer(name)


_COMPACT_AT = 64
"""A timer's heap longer than this is rebuilt once most of its entries are cancelled."""


class ThreadTimer:
    """
    One thread, started on first use, that calls functions after a delay (a heap of due
    times). Callbacks must not block: they queue work, they never run it.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        # Entries [due, handle, callback]; a cancelled one stays with callback None.
        self._heap: list[list[Any]] = []
        self._live: dict[int, list[Any]] = {}
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def call_later(self, delay: float, callback: Callable[[int], Any]) -> int:
        """
        See :meth:`TimerQueue.call_later`.
        """
        with self._cond:
            if self._shutdown:
                msg = "the flow's timer was shut down"
                raise SchedulerShutdownError(msg)
            handle = new_handle()
            entry = [time.monotonic() + delay, handle, callback]
            heapq.heappush(self._heap, entry)
            self._live[handle] = entry
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()  # due before what the thread waits for
            return handle

    def cancel(self, handle: int) -> None:
        """
        See :meth:`TimerQueue.cancel`.
        """
        with self._cond:
            entry = self._live.pop(handle, None)
            if entry is not None:
                entry[2] = None
                heap = self._heap
                if len(heap) > _COMPACT_AT and 2 * len(self._live) < len(heap):
                    # Mostly cancelled entries (timeouts of handlers that returned in
                    # time): drop them rather than keep them until they fall due.
                    self._heap = [e for e in heap if e[2] is not None]
                    heapq.heapify(self._heap)

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self._shutdown:
                        return
                    if self._heap:
                        due = self._heap[0][0] - time.monotonic()
                        if due <= 0:
                            _, handle, callback = heapq.heappop(self._heap)
                            if callback is None:
                                continue
                            del self._live[handle]
                            break
                        cond.wait(due)
                    else:
                        cond.wait()
            try:
                callback(handle)
            except BaseException as exc:  # noqa: BLE001 - the timer must keep serving others
                logger.error("timer_callback_failed", error=repr_of(exc), exc_info=exc)
            del callback  # nothing of the last callback (its job, its flow) is kept while idle

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """
        Stop the timer thread; pending callbacks are dropped. With ``wait``, join it (for
        ``timeout`` seconds at most).
        """
        with self._cond:
            self._shutdown = True
            self._heap.clear()
            self._live.clear()
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)


_lock = threading.Lock()
_clock: Clock = RealClock()


def current_clock() -> Clock:
    """
    The clock the engine uses now (the real one unless a test installed another).
    """
    return _clock


def install_clock(clock: Clock | None) -> Clock:
    """
    Make ``clock`` the engine's clock (``None``: the real one) and return the one it
    replaces. A flow arms each timer on the clock installed at that moment; what it armed
    on another clock stays there.
    """
    global _clock  # the one process-wide clock, swapped by tests only
    with _lock:
        old, _clock = _clock, clock if clock is not None else RealClock()
    return old

"""
A fake clock for tests (the ``routilux_clock`` fixture): retry back-offs, slot timeouts,
job deadlines and every other timer of the engine wait on it, and run when the test
advances it, on the test's thread. Real time never passes for them.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from routilux.engine._clock import TimerQueue, install_clock, new_handle
from routilux.exceptions import SchedulerShutdownError


__all__ = ["FakeClock"]

_EPOCH = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where the fake wall clock starts."""


class FakeClock:
    """
    A clock whose time moves only when :meth:`advance` is called: its monotonic clock
    starts at 0, its wall clock at 2026-01-01T00:00:00Z. Install it with
    :meth:`installed` (the ``routilux_clock`` fixture does): the retries, timeouts and
    deadlines every flow arms while it is installed wait on it.

    Thread-safe: jobs arm timers from their worker threads while the test advances it.

    .. versionadded:: 0.10
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._now = 0.0
        # Entries [due, handle, callback, owner]; a cancelled one keeps callback None.
        self._heap: list[list[Any]] = []
        self._live: dict[int, list[Any]] = {}

    # -- the Clock interface (routilux.engine._clock.Clock) ---------------------------

    def monotonic(self) -> float:
        """
        Seconds since the clock was made, as advanced.
        """
        with self._cond:
            return self._now

    def time(self) -> float:
        """
        The fake wall clock, as epoch seconds (2026-01-01T00:00:00Z plus the time advanced).
        """
        return _EPOCH + self.monotonic()

    def timer(self, name: str) -> TimerQueue:
        """
        A flow's timer queue on this clock (``name`` is only for messages).
        """
        return _FakeTimer(self, name)

    # -- what a test does --------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[FakeClock]:
        """
        Make this the engine's clock within the ``with`` block (the real one again after).
        """
        old = install_clock(self)
        try:
            yield self
        finally:
            install_clock(old)

    @property
    def pending(self) -> int:
        """
        How many timer callbacks wait for their time.
        """
        with self._cond:
            return len(self._live)

    def next_due(self) -> float | None:
        """
        Seconds from now until the next callback is due, or ``None`` when none waits.
        """
        with self._cond:
            due = [entry[0] for entry in self._live.values()]
            return max(0.0, min(due) - self._now) if due else None

    def wait_armed(self, count: int = 1, timeout: float = 5.0) -> None:
        """
        Wait (in real time, ``timeout`` seconds at most) until at least ``count`` timer
        callbacks wait on this clock: a job running on worker threads arms its retry or
        timeout there, so a test waits for that before it advances the clock.

        Raises:
            AssertionError: Fewer were armed when ``timeout`` passed.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._live) >= count, timeout):
                msg = (
                    f"routilux_clock: {len(self._live)} timer(s) armed after {timeout} s of "
                    f"real time, expected at least {count}"
                )
                raise AssertionError(msg)

    def advance(self, seconds: float) -> int:
        """
        Move the clock ``seconds`` forward and run, on the calling thread and in order of
        due time (then of arming), every callback that falls due, also those the
        callbacks arm within the window. Return how many ran. A callback's error
        propagates (the rest stay armed).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            msg = f"a clock cannot go back: advance({seconds!r})"
            raise ValueError(msg)
        with self._cond:
            target = self._now + seconds
        ran = 0
        while True:
            with self._cond:
                entry = self._pop_due(target)
                if entry is None:
                    self._now = max(self._now, target)
                    return ran
                self._now = max(self._now, entry[0])
            entry[2](entry[1])
            ran += 1

    def _pop_due(self, target: float) -> list[Any] | None:
        # With the lock held: take the next live entry due by ``target``.
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if not heap or heap[0][0] > target:
            return None
        entry = heapq.heappop(heap)
        del self._live[entry[1]]
        return entry

    # -- for _FakeTimer ----------------------------------------------------------------

    def _arm(self, owner: _FakeTimer, delay: float, callback: Callable[[int], Any]) -> int:
        with self._cond:
            handle = new_handle()
            entry = [self._now + max(0.0, delay), handle, callback, owner]
            heapq.heappush(self._heap, entry)
            self._live[handle] = entry
            self._cond.notify_all()
            return handle

    def _cancel(self, handle: int) -> None:
        with self._cond:
            entry = self._live.pop(handle, None)
            if entry is not None:
                entry[2] = None

    def _drop(self, owner: _FakeTimer) -> None:
        with self._cond:
            for handle in [h for h, e in self._live.items() if e[3] is owner]:
                self._live.pop(handle)[2] = None


class _FakeTimer:
    """
    One flow's timer queue on a :class:`FakeClock` (all share the clock's heap).
    """

    def __init__(self, clock: FakeClock, name: str) -> None:
        self._clock = clock
        self._name = name
        self._shutdown = False

    def call_later(self, delay: float, callback: Callable[[int], Any]) -> int:
        if self._shutdown:
            msg = f"the flow's timer {self._name!r} was shut down"
            raise SchedulerShutdownError(msg)
        return self._clock._arm(self, delay, callback)

    def cancel(self, handle: int) -> None:
        self._clock._cancel(handle)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        self._shutdown = True
        self._clock._drop(self)

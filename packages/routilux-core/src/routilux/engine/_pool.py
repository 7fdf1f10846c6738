"""
The worker pool a Flow shares between its jobs, and the timer that schedules retries.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux._util._log import logger, repr_of
from routilux.exceptions import SchedulerShutdownError


if TYPE_CHECKING:
    from routilux.engine._run import JobRun

__all__ = ["Timer", "WorkerPool"]

_pool_numbers = itertools.count()


class WorkerPool:
    """
    Up to ``max_workers`` threads, started on demand, that take job runs with queued work
    from one FIFO of ready runs. A run is handed over only when it has work and is not
    already waiting in the FIFO, so queued activations stay in their job, where pause and
    cancel can reclaim them.
    """

    def __init__(self, max_workers: int, name_prefix: str | None = None) -> None:
        self.max_workers = max_workers
        self._prefix = name_prefix or f"ThreadPoolExecutor-{next(_pool_numbers)}"
        self._cond = threading.Condition(threading.Lock())
        self._ready: deque[JobRun] = deque()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._shutdown = False
        self._idents: set[int] = set()

    def push(self, run: JobRun) -> None:
        """
        Queue ``run`` for a worker.

        Raises:
            SchedulerShutdownError: The pool was shut down.
        """
        with self._cond:
            if self._shutdown:
                msg = "the flow's worker pool was shut down while work was handed to it"
                raise SchedulerShutdownError(msg)
            self._ready.append(run)
            if self._idle:
                self._idle -= 1
                self._cond.notify()
            elif len(self._threads) < self.max_workers:
                self._spawn()

    def has_waiting(self) -> bool:
        """
        Tell whether other runs wait for a worker (used for fairness between jobs).
        """
        return bool(self._ready)

    def owns_current_thread(self) -> bool:
        """
        Tell whether the calling thread is one of this pool's workers.
        """
        return threading.get_ident() in self._idents

    def _spawn(self) -> None:
        name = f"{self._prefix}_{len(self._threads)}"
        thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        cond = self._cond
        ready = self._ready
        with cond:
            self._idents.add(threading.get_ident())
        while True:
            with cond:
                while not ready:
                    if self._shutdown:
                        return
                    self._idle += 1
                    cond.wait()
                run = ready.popleft()
            try:
                run.work()
            except BaseException as exc:  # noqa: BLE001 - a worker must survive and report
                logger.error(
                    "worker_crashed",
                    flow_id=run.flow.flow_id,
                    job_id=run.job_state.job_id,
                    error=repr_of(exc),
                    exc_info=exc,
                )
            # An idle worker keeps nothing of its last job alive (nor, through it, its flow).
            del run

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """
        Stop the workers once the FIFO is empty; with ``wait``, join them.
        """
        with self._cond:
            self._shutdown = True
            self._idle = 0
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in threads:
                if thread is threading.current_thread():
                    continue
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)


class Timer:
    """
    One thread that calls functions after a delay. Retries wait here, never in a worker.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callable[[int], Any]]] = []
        self._cancelled: set[int] = set()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._shutdown = False

    def call_later(self, delay: float, callback: Callable[[int], Any]) -> int:
        """
        Call ``callback(handle)`` after ``delay`` seconds; return the handle.
        """
        with self._cond:
            if self._shutdown:
                msg = "the flow's timer was shut down"
                raise SchedulerShutdownError(msg)
            handle = next(self._seq)
            heapq.heappush(self._heap, (time.monotonic() + delay, handle, callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
            return handle

    def cancel(self, handle: int) -> None:
        """
        Make sure ``handle``'s callback is not called (a no-op once it has been).
        """
        with self._cond:
            self._cancelled.add(handle)

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
                            if handle in self._cancelled:
                                self._cancelled.discard(handle)
                                continue
                            break
                        cond.wait(due)
                    else:
                        cond.wait()
            try:
                callback(handle)
            except BaseException as exc:  # noqa: BLE001 - the timer must keep serving others
                logger.error("timer_callback_failed", error=repr_of(exc), exc_info=exc)
            del callback  # nothing of the last retry (its job, its flow) is kept while idle

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """
        Stop the timer thread; pending callbacks are dropped. With ``wait``, join it (for
        ``timeout`` seconds at most).
        """
        with self._cond:
            self._shutdown = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

"""
The worker pool a Flow shares between its jobs.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from routilux._util._log import logger, repr_of
from routilux.exceptions import SchedulerShutdownError


if TYPE_CHECKING:
    from routilux.engine._run import JobRun

__all__ = ["WorkerPool"]

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

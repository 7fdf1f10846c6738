"""
DaskJobHandle: a job submitted to a DaskJobExecutor, as a JobHandle and a Future.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux import JobState
from routilux.exceptions import InvalidStateError
from routilux.lifecycle import Action, transition
from routilux.store import BaseJobHandle
from routilux_dask._tasks import Event, stored_rest


if TYPE_CHECKING:
    from routilux_dask._executor import DaskJobExecutor


__all__ = ["DaskJobHandle"]


class DaskJobHandle(BaseJobHandle):
    """
    A job submitted to a :class:`DaskJobExecutor`: a :class:`~routilux.store.JobHandle`
    that also reads like a ``concurrent.futures.Future`` (:meth:`result`, :meth:`done`,
    :meth:`exception`, :meth:`add_done_callback`). The result is the JobState at rest:
    ``completed``, ``failed``, ``cancelled`` or ``paused`` (then :meth:`resume` submits it again).
    """

    _kind = "DaskJobHandle"

    def __init__(
        self, executor: DaskJobExecutor, job_id: str, submit: Callable[[int], Any]
    ) -> None:
        super().__init__(job_id)
        self._executor = executor
        self._submit = submit
        self._runs = 0
        self._lock = threading.Lock()
        self._last: JobState | None = None
        # Set when cancel() settled the job while no run of it was under way: the job's
        # state is then the stored one (with a store), or this cancelled state (without).
        self._cancelled = False
        self._cancelled_state: JobState | None = None
        #: The Dask future of the job's current run.
        self.future: Any = self._start()

    def _start(self) -> Any:
        self._runs += 1
        future = self._submit(self._runs)
        return future

    # -- concurrent.futures ----------------------------------------------------------

    def result(self, timeout: float | None = None) -> JobState:
        """
        Wait for the run and return its JobState at rest; for a job :meth:`cancel` settled
        before it ran (or while it was paused), the cancelled JobState, as stored.

        Raises:
            TimeoutError: ``timeout`` passed first.
            Exception: The task failed on the cluster (for example ``KilledWorker``).
        """
        cancelled = self._cancelled_rest()
        if cancelled is not None:
            return cancelled
        data = self.future.result(timeout=timeout)
        state = JobState()
        state.deserialize(data)
        with self._lock:
            self._last = state
        return state

    def done(self) -> bool:
        """
        Return whether the current run has ended.
        """
        return bool(self.future.done())

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """
        Return the error of the current run, or ``None``.
        """
        if self._cancelled:
            return None
        error: BaseException | None = self.future.exception(timeout=timeout)
        return error

    def _cancelled_rest(self) -> JobState | None:
        # The cancelled JobState when cancel() settled the job without a run, else None.
        if not self._cancelled:
            return None
        store = self._executor.store
        if store is not None:
            return stored_rest(store, self._job_id)
        with self._lock:
            return self._cancelled_state

    def add_done_callback(self, fn: Callable[[DaskJobHandle], object]) -> None:
        """
        Call ``fn(handle)`` when the current run ends.
        """
        self.future.add_done_callback(lambda _f: fn(self))

    # -- JobHandle --------------------------------------------------------------------

    def status(self) -> str:
        """
        Return the job's status: from the store when there is one, else from the task.
        """
        store = self._executor.store
        if store is not None:
            return store.load_job(self._job_id).status
        if not self.future.done():
            return "running"
        if self.future.status != "finished":
            return "failed" if self.future.status == "error" else "cancelled"
        return str(self.result().status)

    def state(self) -> JobState:
        """
        Return the last checkpointed JobState (store), or the last result (no store).

        Raises:
            InvalidStateError: No store, and the current run has not ended.
        """
        store = self._executor.store
        if store is not None:
            return self._stored_state(store)
        if self.future.done():
            return self.result()
        with self._lock:
            last = self._last
        if last is None:
            msg = f"job {self._job_id!r} has no state yet (its first run is under way)"
            raise InvalidStateError(msg)
        return last

    def pause(self) -> None:
        """
        Ask the job to pause at its next activation boundary; :meth:`result` then returns
        the paused JobState and :meth:`resume` continues it.
        """
        self._event("pause").set()
        store = self._executor.store
        if store is not None and store.load_job(self._job_id).status == "running":
            store.request_control(self._job_id, "pause")

    def resume(self) -> None:
        """
        Submit the paused job again (any worker continues it from its pause point).

        Raises:
            InvalidStateError: The job is not paused.
        """
        state = self.result()
        if state.status != "paused":
            msg = f"job {self._job_id!r} is {state.status}; only a paused job can be resumed"
            raise InvalidStateError(msg)
        self._event("pause").clear()
        self.future = self._start()

    def cancel(self) -> None:
        """
        Cancel the job: a running one stops at its next activation boundary; a queued one
        never runs (with a store, its task is dropped) and a paused one is cancelled at once.
        :meth:`result` then returns the cancelled JobState.
        """
        self._event("cancel").set()
        store = self._executor.store
        if store is None:
            # The state lives in the task: a queued task finds the Event set before its
            # first activation; a run that ended paused is cancelled here.
            future = self.future
            if future.done() and future.status == "finished":
                state = self.result()
                if state.status == "paused":
                    transition(state, Action.CANCEL)
                    with self._lock:
                        self._cancelled_state = state
                    self._cancelled = True
            return
        status = store.load_job(self._job_id).status
        if status in ("pending", "paused"):
            # No run holds the job (a queued task has not claimed it yet): settle it in the
            # store, which fences out a task that starts anyway, and drop the task.
            store.set_status(self._job_id, "cancelled")
            self._cancelled = True
            if not self.future.done():
                self.future.cancel()
        elif status == "running":
            store.request_control(self._job_id, "cancel")

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the run rests or ``timeout`` passes; return the JobState then.
        """
        try:
            return self.result(timeout)
        except TimeoutError:
            return self.state()

    def _event(self, what: str) -> Any:
        return Event(f"{self._executor.prefix(self._job_id)}-{what}", client=self._executor.client)

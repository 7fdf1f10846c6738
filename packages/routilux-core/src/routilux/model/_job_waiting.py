"""
The engine's run of a JobState: the run it holds, its lock and condition, its execution
tracker, and waiting.

A job is waited for until it finishes (:meth:`JobWaiting.wait_for_completion`) or settles
(:meth:`JobWaiting.wait_settled`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from routilux.model._job_changes import FINAL_STATUSES, JobStatePart
from routilux.model._tracker import PackedTracker, mark_given, unpack_tracker


if TYPE_CHECKING:
    from routilux.model._context import RunState
    from routilux.model._history import ExecutionHistory
    from routilux.model._tracker import ExecutionTracker


__all__ = ["JobWaiting"]


class JobWaiting(JobStatePart):
    """
    The part of a JobState that holds the engine's run of the job and waits for it.
    """

    __slots__ = ()

    # The job's attributes this part writes, declared as properties for type checkers
    # (JobState's slots; a part has none).
    if TYPE_CHECKING:

        @property
        def _cond(self) -> threading.Condition | None: ...

        @_cond.setter
        def _cond(self, value: threading.Condition | None) -> None: ...

        @property
        def _run(self) -> RunState | None: ...

        @_run.setter
        def _run(self, value: RunState | None) -> None: ...

        @property
        def _tracker(self) -> ExecutionTracker | PackedTracker | None: ...

        @_tracker.setter
        def _tracker(self, value: ExecutionTracker | PackedTracker | None) -> None: ...

        @property
        def _history(self) -> ExecutionHistory: ...

    @property
    def _settled(self) -> threading.Condition:
        # The job's condition, made on first use and dropped when a finished job lets go
        # of its run, so that a retained finished JobState carries no waiter queue. A
        # waiter holds on to the condition it waits on; a later one gets a fresh condition
        # and finds the job finished.
        with self._lock:
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(self._lock)
            return cond

    @property
    def execution_tracker(self) -> ExecutionTracker | None:
        """
        This job's execution tracker (never serialized). Assignable.

        A finished job keeps the tracker no one was given packed; reading it makes it
        again (once: the same object from then on).
        """
        with self._lock:
            tracker = self._tracker
            if isinstance(tracker, PackedTracker):
                tracker = self._tracker = unpack_tracker(tracker, self._history, self._lock)
            if tracker is not None:
                mark_given(tracker)
            return tracker

    @execution_tracker.setter
    def execution_tracker(self, tracker: ExecutionTracker | None) -> None:
        with self._lock:
            self._tracker = tracker

    # -- the engine's interface -------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """
        The job's (reentrant) lock: every change of the job holds it, and so does every
        change of the engine's run of the job. Engine interface.
        """
        return self._lock

    @property
    def condition(self) -> threading.Condition:
        """
        The job's condition (on :attr:`lock`): its waiters wake when its status or its run
        changes. Engine interface.
        """
        return self._settled

    @property
    def run_state(self) -> RunState | None:
        """
        The engine's run of the job (live, or what a finished one left), or ``None``.
        Engine interface.
        """
        return self._run

    def attach_run(self, run: RunState) -> None:
        """
        Make ``run`` the job's run. Engine interface.
        """
        with self._lock:
            self._run = run

    def release_run(self, left: RunState) -> None:
        """
        Replace the job's finished run by what it leaves behind (``left``) and let go of
        the job's condition, so that a retained finished job carries neither. Engine
        interface.
        """
        with self._lock:
            self._run = left
            self._cond = None

    # -- waiting --------------------------------------------------------------------

    def wait_for_completion(self, timeout: float | None = None) -> bool:
        """
        Wait until the job has finished (completed, failed or cancelled).

        A paused job has not finished: this keeps waiting until it is resumed and finishes,
        or the timeout passes.

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as it takes.

        Returns:
            ``True`` if the job has finished, ``False`` if the timeout passed first.
        """
        with self._settled:
            return self._settled.wait_for(self._is_finished, timeout)

    def _is_finished(self) -> bool:
        run = self._run
        if run is not None and not (run.finished and run.is_settled()):
            return False
        return self.status in FINAL_STATUSES

    def wait_settled(self, timeout: float | None = None) -> bool:
        """
        Wait until the job is settled: final (completed, failed or cancelled) or paused,
        with no handler of it running any more (a cancelled job counts as finished at
        once for :meth:`wait_for_completion`; its running handlers still finish).

        A handler may pause its own job and go on running for a while; a copy of the job
        saved before it returns could miss what it emits later. A paused job saved after
        ``wait_settled()`` returned ``True`` holds every activation: none is running, each
        one was delivered or is in :attr:`pending_tasks`.

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as it takes.

        Returns:
            ``True`` once the job is settled, ``False`` if the timeout passed first.

        .. versionadded:: 0.10
        """
        with self._settled:
            return self._settled.wait_for(self._is_settled, timeout)

    def _is_settled(self) -> bool:
        run = self._run
        if run is not None and run.abandoned:
            return True  # its store refused a checkpoint: nothing of it runs here any more
        if run is not None and (run.in_flight or not run.is_settled()):
            return False
        return self.status in FINAL_STATUSES or self.status == "paused"

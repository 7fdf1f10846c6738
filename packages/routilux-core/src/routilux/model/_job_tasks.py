"""
A job's work as data: its deferred events, pause points, pending and failed activations.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from routilux.model import _lifecycle as lifecycle
from routilux.model._job_changes import ChangeKind
from routilux.model._job_containers import JobContainers


if TYPE_CHECKING:
    from routilux.model._job_state import JobState


__all__ = ["JobTasks"]


class JobTasks(JobContainers):
    """
    The part of a JobState that holds its work as data: :attr:`deferred_events`,
    :attr:`pause_points`, :attr:`pending_tasks` and :attr:`failed_tasks`.

    Besides :meth:`add_deferred_event`, its methods are the engine's interface (the
    scheduler calls them as a job pauses, fails, is cancelled, resumed or retried);
    applications read the containers instead.
    """

    __slots__ = ()

    # The job's attribute this part writes, declared as a property for type checkers
    # (JobState's slot; a part has none).
    if TYPE_CHECKING:

        @property
        def checkpoint(self) -> dict[str, Any] | None: ...

        @checkpoint.setter
        def checkpoint(self, value: dict[str, Any] | None) -> None: ...

        def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None: ...

    def add_deferred_event(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """
        Store an event to emit when the job resumes.
        """
        entry = {
            "routine_id": routine_id,
            "event_name": event_name,
            "data": dict(data),
            "timestamp": datetime.now().isoformat(),
        }
        with self._lock:
            self.deferred_events.append(entry)
            self._updated_at = time.time()
            self._changed(ChangeKind.DEFERRED_EVENT, event_name, None, dict(entry), routine_id)

    def record_pause(
        self, reason: str = "", checkpoint: dict[str, Any] | None = None, **counts: Any
    ) -> None:
        """
        Append one pause point (its time, ``reason``, ``checkpoint`` and ``counts``) and
        make the job ``paused``. Engine interface.

        Raises:
            JobStateError: The lifecycle refuses the pause; nothing is recorded.
        """
        point = {
            "timestamp": datetime.now().isoformat(),
            "reason": reason,
            "current_routine_id": self.current_routine_id,
            "checkpoint": dict(checkpoint) if checkpoint else {},
            **counts,
        }
        with self._lock:
            lifecycle.next_status(self.status, lifecycle.Action.PAUSE, job_id=self.job_id)
            self.pause_points.append(point)
            self.checkpoint = point["checkpoint"]
            self._changed(ChangeKind.PAUSE_POINT, None, None, dict(point), None)
            lifecycle.transition(cast("JobState", self), lifecycle.Action.PAUSE)

    def _set_running(self) -> None:
        # A paused job runs again; any other status is left alone (SPEC 9.2).
        with self._lock:
            if self.status == "paused":
                lifecycle.transition(cast("JobState", self), lifecycle.Action.RESUME)

    def record_cancel(self, reason: str = "") -> None:
        """
        Make the job ``cancelled``, keeping a non-empty ``reason`` in the routine state
        ``_cancellation``. Engine interface.

        Raises:
            JobStateError: The lifecycle refuses the cancel; nothing is recorded.
        """
        with self._lock:
            lifecycle.next_status(self.status, lifecycle.Action.CANCEL, job_id=self.job_id)
            if reason:
                self.update_routine_state("_cancellation", {"reason": reason})
            lifecycle.transition(cast("JobState", self), lifecycle.Action.CANCEL)

    def keep_failed_tasks(self, tasks: Iterable[dict[str, Any]]) -> None:
        """
        Keep what a failure dropped (``tasks``, as pending-task data) in
        :attr:`failed_tasks` for a retry; the pending work of a paused job that fails goes
        with it, in emission order. Engine interface.
        """
        with self._lock:
            added = list(tasks)
            pending = self.pending_tasks
            if pending:
                added.extend(pending)
                self.pending_tasks = []
                self._changed(ChangeKind.PENDING_TASKS, None, pending, [], None)
            if not added:
                return
            failed = self.failed_tasks
            failed.extend(added)
            failed.sort(key=_task_order)
            self._updated_at = time.time()
            self._changed(ChangeKind.FAILED_TASKS, None, None, added, None)

    def add_pending_tasks(self, tasks: Iterable[dict[str, Any]]) -> None:
        """
        Append ``tasks`` (activations of a paused job, as data) to :attr:`pending_tasks`.
        Engine interface.
        """
        with self._lock:
            added = list(tasks)
            if not added:
                return
            self.pending_tasks.extend(added)
            self._updated_at = time.time()
            self._changed(ChangeKind.PENDING_TASKS, None, None, added, None)

    def drop_pending_tasks(self) -> None:
        """
        Drop :attr:`pending_tasks` (a cancel: the activations a pause set aside go with the
        rest of the job's queue). Engine interface.
        """
        with self._lock:
            pending = self.pending_tasks
            if pending:
                self.pending_tasks = []
                self._updated_at = time.time()
                self._changed(ChangeKind.PENDING_TASKS, None, pending, [], None)

    def take_resume_work(
        self, *, failed: bool = False
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """
        Take what a resume runs, leaving it empty here: the deferred events, and the
        pending activations (with ``failed``, a retry's: and the failed ones) in emission
        order. Engine interface.
        """
        with self._lock:
            deferred, tasks = self.deferred_events, self.pending_tasks
            self.deferred_events, self.pending_tasks = [], []
            if deferred or tasks:
                self._updated_at = time.time()
                if deferred:
                    self._changed(ChangeKind.DEFERRED_EVENT, None, deferred, [], None)
                if tasks:
                    self._changed(ChangeKind.PENDING_TASKS, None, tasks, [], None)
            if failed:
                tasks = sorted(tasks + self._take_failed(), key=_task_order)
            return deferred, tasks

    def _take_failed(self) -> list[dict[str, Any]]:
        with self._lock:
            failed = self.failed_tasks
            if failed:
                self.failed_tasks = []
                self._updated_at = time.time()
                self._changed(ChangeKind.FAILED_TASKS, None, failed, [], None)
            return failed


def _task_order(task: dict[str, Any]) -> int:
    seq = task.get("seq")
    return seq if isinstance(seq, int) else 0

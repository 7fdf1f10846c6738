"""
PostgresJobHandle: a job queued on a PostgresBackend, seen from any process reaching the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routilux.exceptions import InvalidStateError
from routilux.store import BaseJobHandle


if TYPE_CHECKING:
    from routilux import JobState
    from routilux_postgres._backend import PostgresBackend


__all__ = ["PostgresJobHandle"]


class PostgresJobHandle(BaseJobHandle):
    """
    A job queued on a :class:`PostgresBackend`, seen from any process that can reach the
    database (not only the one that submitted it): a :class:`~routilux.store.JobHandle`.
    """

    _kind = "PostgresJobHandle"

    def __init__(self, backend: PostgresBackend, job_id: str) -> None:
        super().__init__(job_id)
        self._backend = backend

    def status(self) -> str:
        """
        Return the job's status now: ``queued``, ``running``, ``paused``, ``completed``,
        ``failed`` or ``cancelled``.
        """
        return self._backend.store.job_status(self._job_id)

    def state(self) -> JobState:
        """
        Return the job's last checkpointed JobState (its routines must be registered here).
        """
        return self._stored_state(self._backend.store)

    def pause(self) -> None:
        """
        Pause the job: a queued one at once (it leaves the queue), a running one at its next
        activation boundary (the request reaches its worker through ``NOTIFY`` within a
        second). Does not wait; :meth:`wait` does.
        """
        store = self._backend.store
        old = store.transition(self._job_id, ("pending", "queued"), "paused")
        if old in ("pending", "queued"):
            self._backend._cancel_queued(self._job_id)
        elif old == "running":
            store.request_control(self._job_id, "pause")

    def resume(self) -> None:
        """
        Queue the paused job again; any worker continues it from its checkpoint.

        Raises:
            InvalidStateError: The job is not paused (a second resume finds it queued).
        """
        old = self._backend.store.transition(self._job_id, ("paused",), "queued")
        if old != "paused":
            msg = f"job {self._job_id!r} is {old}; only a paused job can be resumed"
            raise InvalidStateError(msg)
        self._backend._defer(self._job_id)

    def cancel(self) -> None:
        """
        Cancel the job: a queued or paused one at once (it never runs again), a running one
        at its next activation boundary.
        """
        old = self._backend.store.cancel_or_request(self._job_id)
        if old in ("pending", "queued", "paused"):
            self._backend._cancel_queued(self._job_id)
        elif old == "running":
            self._backend._abort_running(self._job_id)

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the job rests (paused, completed, failed or cancelled) or ``timeout``
        passes; return its JobState as stored then.
        """
        self._backend.store.wait_settled(self._job_id, timeout)
        return self.state()

"""
A job's statuses, the changes a JobState reports, and the base of JobState's parts.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs


if TYPE_CHECKING:
    import threading
    from collections.abc import Callable


__all__ = ["FINAL_STATUSES", "ChangeKind", "JobStateChange", "JobStatePart", "JobStatus"]


class JobStatus(str, enum.Enum):
    """
    The documented job statuses. ``JobState.status`` is a plain ``str``; these compare equal to it.
    """

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""The statuses a job does not leave by itself."""


class ChangeKind(str, enum.Enum):
    """
    What part of a JobState a :class:`JobStateChange` is about.
    """

    STATUS = "status"
    ROUTINE_STATE = "routine_state"
    SHARED_DATA = "shared_data"
    SHARED_LOG = "shared_log"
    HISTORY = "history"
    METADATA = "metadata"
    DEFERRED_EVENT = "deferred_event"
    PAUSE_POINT = "pause_point"
    PENDING_TASKS = "pending_tasks"
    FAILED_TASKS = "failed_tasks"
    ERROR = "error"
    OUTPUT = "output"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class JobStateChange:
    """
    One change to a JobState, as handed to the ``routilux_job_state_changed`` hook.

    Replaying the changes of a job in order rebuilds its shared data, shared log, routine
    states, history, metadata, outputs and status.
    """

    #: The job that changed.
    job_id: str
    #: What changed.
    kind: ChangeKind
    #: The key within that part (a shared-data key, a routine id...), or ``None``.
    key: str | None
    #: The value before the change (``None`` for appends).
    old: Any
    #: The value after the change (the appended item for appends).
    new: Any
    #: The routine the change concerns, when there is one.
    routine_id: str | None
    #: When it changed.
    timestamp: datetime


class JobStatePart:
    """
    The base of the parts :class:`~routilux.job_state.JobState` is made of (its containers,
    shared data, tasks...): it reports a change to the job's listener, and declares, for
    type checkers, what every part may use of the job. No part keeps state of its own
    (empty ``__slots__``), and every mutation takes the job's lock.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        job_id: str
        flow_id: str
        status: str
        current_routine_id: str | None
        _lock: threading.RLock

        @property
        def _updated_at(self) -> datetime | float: ...

        @_updated_at.setter
        def _updated_at(self, value: datetime | float) -> None: ...

        _on_change: Callable[[JobStateChange], None] | None

        @property
        def lock(self) -> threading.RLock: ...

        @property
        def updated_at(self) -> datetime: ...

        @updated_at.setter
        def updated_at(self, when: datetime) -> None: ...

    def _changed(
        self,
        kind: ChangeKind,
        key: str | None,
        old: Any,
        new: Any,
        routine_id: str | None,
        when: datetime | None = None,
    ) -> None:
        # Called with the lock held; the listener (the plugin relay) must not block.
        # ``when`` defaults to the job's updated_at (set by the change).
        listener = self._on_change
        if listener is not None:
            stamp = self.updated_at if when is None else when
            listener(JobStateChange(self.job_id, kind, key, old, new, routine_id, stamp))

"""
The containers of a JobState that most jobs never use, made the first time they are read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from routilux.model._job_changes import JobStatePart


__all__ = ["CONTAINER_NAMES", "JobContainers", "MadeOnUse"]

_C = TypeVar("_C")


class MadeOnUse(Generic[_C]):
    """
    A JobState container attribute (``shared_log``, ``metadata``...) kept in the job's
    slot of the same name with a leading underscore (an attrs field of JobState) and made
    under the job's lock the first time it is read: a finished job that never used it
    carries no empty container. Assigning replaces it.
    """

    def __init__(self, factory: Callable[[], _C], doc: str) -> None:
        #: Makes the empty container.
        self.factory: Callable[[], _C] = factory
        #: The name of the slot that holds the container.
        self.slot = ""
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    @overload
    def __get__(self, job: None, owner: type) -> MadeOnUse[_C]: ...

    @overload
    def __get__(self, job: JobStatePart, owner: type) -> _C: ...

    def __get__(self, job: JobStatePart | None, owner: type) -> _C | MadeOnUse[_C]:
        if job is None:
            return self
        value: _C | None = getattr(job, self.slot)
        if value is None:
            with job.lock:
                value = getattr(job, self.slot)
                if value is None:
                    value = self.factory()
                    setattr(job, self.slot, value)
        return value

    def __set__(self, job: JobStatePart, value: _C) -> None:
        setattr(job, self.slot, value)


class JobContainers(JobStatePart):
    """
    The part of a JobState that holds its containers made on first use.
    """

    __slots__ = ()

    pause_points: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list, "One entry per pause: timestamp, reason, checkpoint and counts."
    )
    pending_tasks: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list, "Activations that were queued when the job paused, as data."
    )
    deferred_events: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list, "Events to emit when the job resumes."
    )
    shared_data: MadeOnUse[dict[str, Any]] = MadeOnUse(
        dict, "Read/write data shared by the job's routines."
    )
    shared_log: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list, "Append-only log shared by the job's routines."
    )
    output_log: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list, "Every ``send_output`` of the job."
    )
    metadata: MadeOnUse[dict[str, Any]] = MadeOnUse(dict, "Free-form metadata of the job.")
    failed_tasks: MadeOnUse[list[dict[str, Any]]] = MadeOnUse(
        list,
        "What a failure dropped, as data: the failed activations (with their error) and the "
        "work that was queued or pending then; :meth:`Flow.retry` runs them again.",
    )


CONTAINER_NAMES: tuple[str, ...] = tuple(
    name for name, value in vars(JobContainers).items() if isinstance(value, MadeOnUse)
)
"""The containers of a JobState made on first use (each kept in the slot ``_<name>``)."""

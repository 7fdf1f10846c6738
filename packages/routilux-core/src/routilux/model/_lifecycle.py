"""
The job lifecycle: which action moves a job from which status to which, as one table.

Every status change of a job goes through :func:`transition` (a JobState in memory) or
:func:`next_status` (a job row in a store): the API calls (``Flow.pause``, ``resume``,
``cancel``, ``retry``), the scheduler when it finishes or fails a job, the async lane, the
store runner and the workers. A refused action raises :class:`~routilux.exceptions.JobStateError`
naming the job, its status and the action.

The rule of the whole lifecycle: what a job reports is what happened. A job never says
``completed`` while work it was given was dropped or never ran; ``cancelled`` is final for
good; a ``failed`` job keeps the work its failure dropped and runs it again only when retried.

.. versionadded:: 0.10
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from routilux.exceptions import JobStateError


if TYPE_CHECKING:
    from routilux.model._job_state import JobState


__all__ = [
    "ACTIONS",
    "ENGINE_ACTIONS",
    "STATUSES",
    "TRANSITIONS",
    "Action",
    "allowed",
    "next_status",
    "restore",
    "transition",
]


class Action(str, enum.Enum):
    """
    What can happen to a job. The first five are asked for by a user (or a store's control
    request); ``finish`` and ``fail`` are the engine's own steps.
    """

    #: ``execute`` / ``submit``, or a store runner starting a job that never ran.
    START = "start"
    #: Stop starting activations; queued ones become ``pending_tasks``.
    PAUSE = "pause"
    #: Run a paused job again (deferred events first, then its pending activations).
    RESUME = "resume"
    #: Drop the job's queued work for good.
    CANCEL = "cancel"
    #: Run a failed job's failed activations, and the work dropped at the failure, again.
    RETRY = "retry"
    #: The engine ran all the work it was given.
    FINISH = "finish"
    #: An error the job's error strategy says stops the job.
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value


ACTIONS: Final = tuple(Action)
"""Every action, in the order of the table's columns."""

ENGINE_ACTIONS: Final = frozenset({Action.FINISH, Action.FAIL})
"""The actions only the engine takes. On a status the table does not know they leave it as
it is (a user may assign any string); every other action on such a status is refused."""

_A = Action
# status -> (start, pause, resume, cancel, retry, finish, fail); None: refused. An action
# that leaves the status as it is, is a no-op for the status (pause of a paused job still
# records one more pause point; resume of a job this flow runs does nothing).
# fmt: off
_ROWS: dict[str, tuple[str | None, ...]] = {
    #             start      pause     resume     cancel       retry      finish       fail
    "pending":   ("running", "paused", "running", "cancelled", None,      "completed", "failed"),
    "queued":    ("running", "paused", "running", "cancelled", None,      "completed", "failed"),
    "running":   ("running", "paused", "running", "cancelled", None,      "completed", "failed"),
    "paused":    (None,      "paused", "running", "cancelled", None,      "paused",    "failed"),
    "completed": ("running", "paused", "running", "cancelled", None,      "completed", "failed"),
    "failed":    (None,      None,     None,      None,        "running", "failed",    "failed"),
    "cancelled": (None,      None,     None,      "cancelled", None,      "cancelled", "cancelled"),
}
# fmt: on

TRANSITIONS: Final[Mapping[tuple[str, Action], str | None]] = MappingProxyType(
    {
        (status, action): target
        for status, row in _ROWS.items()
        for action, target in zip(ACTIONS, row, strict=True)
    }
)
"""``(status, action) -> new status``, or ``None`` where the action is refused.

``pending`` and ``queued`` (a job waiting in a store's queue) behave alike. A loaded job
that says ``running`` with no live run in this process resumes like a paused one."""

STATUSES: Final = tuple(_ROWS)
"""The statuses the table knows, in its row order."""

_WHY: dict[tuple[str, Action], str] = {
    ("failed", _A.RESUME): "a failed job is run again with retry (flow.retry(job_state), "
    "or 'routilux retry JOB'), which re-runs its failed activations",
    ("failed", _A.START): "a failed job is run again with retry (flow.retry(job_state))",
    ("failed", _A.PAUSE): "a failed job runs nothing to pause; retry it to run it again",
    ("failed", _A.CANCEL): "a failed job runs nothing to cancel; it stays failed",
    ("paused", _A.START): "a paused job is continued with resume, not started again",
}


def _refusal(job_id: str, status: str, action: Action) -> JobStateError:
    if status not in _ROWS:
        why = f"{status!r} is not a status the job lifecycle knows"
    elif status == "cancelled":
        why = "a cancelled job is final: nothing of it runs again"
    elif action is _A.RETRY:
        why = "only a failed job can be retried"
    else:
        why = _WHY.get((status, action), "the job lifecycle does not allow it")
    who = f"job {job_id!r}" if job_id else "the job"
    msg = f"cannot {action.value} {who}: it is {status} ({why})"
    return JobStateError(msg, job_id=job_id, status=status, action=action.value)


def next_status(status: str, action: Action | str, *, job_id: str = "") -> str:
    """
    Return the status ``action`` moves a job in ``status`` to (the same status for a
    no-op), by :data:`TRANSITIONS`.

    Args:
        status: The job's status now.
        action: An :class:`Action` or its value.
        job_id: Named in the error message.

    Raises:
        JobStateError: The table refuses the action.
    """
    act = Action(action)
    target = TRANSITIONS.get((status, act))
    if target is None:
        if status not in _ROWS and act in ENGINE_ACTIONS:
            return status
        raise _refusal(job_id, status, act)
    return target


def allowed(status: str, action: Action | str) -> bool:
    """
    Tell whether the table allows ``action`` on a job in ``status`` (for a page's buttons).
    """
    return TRANSITIONS.get((status, Action(action))) is not None


def transition(job_state: JobState, action: Action | str) -> str:
    """
    Apply ``action`` to ``job_state`` under the job's lock and return its new status.

    The status changes (with its change notification and wake-up of waiters) only when the
    table says so; a no-op leaves it as it is.

    Raises:
        JobStateError: The table refuses the action; nothing changed.
    """
    with job_state._lock:
        status = job_state.status
        new = next_status(status, action, job_id=job_state.job_id)
        if new != status:
            job_state._set_status(new)
        return new


def restore(job_state: JobState, status: str) -> None:
    """
    Give ``job_state`` the status a document or a store row says it has, whatever string
    that is (loading a job, not a transition: nothing is checked, nobody is notified).
    """
    with job_state._lock:
        job_state.status = status

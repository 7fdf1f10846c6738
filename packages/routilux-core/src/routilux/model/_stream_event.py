"""
:class:`StreamEvent`: one thing that happened in a job, as ``Flow.stream`` yields it.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs


if TYPE_CHECKING:
    from routilux.model._job_state import JobState

__all__ = ["EventKind", "StreamEvent"]


class EventKind(str, enum.Enum):
    """
    The kinds of :class:`StreamEvent`; each compares equal to its string.
    """

    JOB_STARTED = "job_started"
    ACTIVATION_STARTED = "activation_started"
    EMITTED = "emitted"
    OUTPUT = "output"
    ERROR = "error"
    RETRY_SCHEDULED = "retry_scheduled"
    PAUSED = "paused"
    RESUMED = "resumed"
    JOB_FINISHED = "job_finished"

    def __str__(self) -> str:
        return self.value


TERMINAL_KINDS: frozenset[str] = frozenset({EventKind.JOB_FINISHED, EventKind.PAUSED})
"""The kinds that end a stream: the job finished, or paused with nothing running."""


@attrs.frozen
class StreamEvent:
    """
    One thing that happened in a job, in the order the job booked it.

    ``data`` by ``kind``:

    - ``job_started``: ``flow_id`` (``routine_id`` is the entry routine).
    - ``activation_started``: ``slot``, ``attempt`` (1 for the first run).
    - ``emitted``: ``event`` (its name), ``data`` (the payload).
    - ``output``: ``output_type``, ``data`` (what ``send_output`` sent).
    - ``error``: ``slot``, ``error_type``, ``message``, ``strategy`` (what the job did:
      ``stop``, ``continue``, ``retry`` or ``skip``).
    - ``retry_scheduled``: ``slot``, ``attempt`` (the number of the attempt to come).
    - ``paused``: ``reason``, ``pending`` (activations set aside for resume).
    - ``resumed``: ``from`` (the status it left: ``paused``, ``completed``, or ``failed``
      for a retry).
    - ``job_finished``: ``status`` (``completed``, ``failed`` or ``cancelled``).

    The last event of a stream (``job_finished``, or ``paused`` once no handler of the job
    runs) carries the job's :class:`~routilux.job_state.JobState` in ``job_state``; the
    others carry ``None``.
    """

    #: What happened (an :class:`EventKind` value).
    kind: str
    #: The job it happened in.
    job_id: str
    #: The flow routine id it is about, or ``None`` (``paused``, ``resumed``, ``job_finished``).
    routine_id: str | None
    #: When it happened (seconds since the epoch, as ``time.time()``).
    time: float
    #: What happened, by ``kind`` (see above).
    data: dict[str, Any] = attrs.field(factory=dict)
    #: The job's state, on the last event of a stream only.
    job_state: JobState | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def terminal(self) -> bool:
        """
        ``True`` for the event that ends a stream (``job_finished`` or ``paused``).
        """
        return self.kind in TERMINAL_KINDS

    def __str__(self) -> str:
        """
        One line: local time, kind, routine id and the data that says most.
        """
        stamp = datetime.fromtimestamp(self.time).strftime("%H:%M:%S.%f")[:-3]
        where = f" {self.routine_id}" if self.routine_id is not None else ""
        return f"{stamp} {self.kind}{where}{_details(self.kind, self.data)}"


def _details(kind: str, data: dict[str, Any]) -> str:
    # The part of a one-line event that depends on its kind.
    if kind == EventKind.ACTIVATION_STARTED:
        attempt = data.get("attempt", 1)
        return f".{data.get('slot')}" + (f" (attempt {attempt})" if attempt != 1 else "")
    if kind == EventKind.EMITTED:
        return f".{data.get('event')} {data.get('data')}"
    if kind == EventKind.OUTPUT:
        return f" {data.get('output_type')} {data.get('data')}"
    if kind == EventKind.ERROR:
        text = f"{data.get('error_type')}: {data.get('message')}"
        return f".{data.get('slot')} {text} -> {data.get('strategy')}"
    if kind == EventKind.RETRY_SCHEDULED:
        return f".{data.get('slot')} attempt {data.get('attempt')}"
    if kind == EventKind.PAUSED:
        return f" ({data.get('reason') or 'no reason'}; {data.get('pending')} pending)"
    if kind == EventKind.RESUMED:
        return f" from {data.get('from')}"
    if kind == EventKind.JOB_FINISHED:
        return f" {data.get('status')}"
    return ""

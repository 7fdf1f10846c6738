"""
JobState: everything that changes while one job of a flow runs, and its records.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

import attrs

from routilux._util._log import bind, repr_of, text_of
from routilux.exceptions import RoutiluxWarning
from routilux.model import _lifecycle as lifecycle
from routilux.model._history import ExecutionHistory, ExecutionRecord


if TYPE_CHECKING:
    from os import PathLike

    from routilux.model._context import RunState
    from routilux.model._output import OutputHandler
    from routilux.model._tracker import ExecutionTracker


__all__ = [
    "FINAL_STATUSES",
    "ChangeKind",
    "ErrorRecord",
    "ExecutionRecord",
    "JobState",
    "JobStateChange",
    "JobStatus",
]


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


@attrs.frozen
class ErrorRecord:
    """
    One handler error a job recorded (see :attr:`JobState.errors`).

    .. versionadded:: 0.10
    """

    #: The flow routine id of the routine whose handler raised.
    routine_id: str
    #: The slot whose activation raised.
    slot: str
    #: The exception's type name.
    error_type: str
    #: The exception's message.
    message: str
    #: Which run of the activation raised (1 for the first, 2 for the first retry...).
    attempt: int
    #: When it was recorded (naive local time).
    time: datetime
    #: What the error strategy did: ``"stop"`` (the job failed), ``"continue"`` (the job
    #: went on without that activation), ``"skip"``, or ``"retry"`` (it was run again).
    strategy: str
    #: The formatted traceback.
    traceback: str = ""

    def serialize(self) -> dict[str, Any]:
        """
        Return the record as plain JSON-able data (as a job document holds it).
        """
        from routilux.codec._job_states import dump_error_record

        return dump_error_record(self)


def _now() -> datetime:
    return datetime.now()


_C = TypeVar("_C")


class _MadeOnUse(Generic[_C]):
    """
    A JobState container attribute (``shared_log``, ``metadata``...) kept in a private
    slot and made, under the job's lock, the first time it is read: a finished job that
    never used it carries no empty container. Assigning replaces it.
    """

    def __init__(self, factory: Callable[[], _C]) -> None:
        self.factory: Callable[[], _C] = factory
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    @overload
    def __get__(self, job: None, owner: type) -> _MadeOnUse[_C]: ...

    @overload
    def __get__(self, job: JobState, owner: type) -> _C: ...

    def __get__(self, job: JobState | None, owner: type) -> _C | _MadeOnUse[_C]:
        if job is None:
            return self
        value: _C | None = getattr(job, self.slot)
        if value is None:
            with job._lock:
                value = getattr(job, self.slot)
                if value is None:
                    value = self.factory()
                    setattr(job, self.slot, value)
        return value

    def __set__(self, job: JobState, value: _C) -> None:
        setattr(job, self.slot, value)


@attrs.define(eq=False, repr=False)
class JobState:
    """
    The runtime state of one job (one ``Flow.execute`` or ``Flow.submit``).

    Every mutation takes one lock, and the read methods return copies, so a JobState can be
    read and written from any number of threads, with or without the GIL.

    Args:
        flow_id: The id of the flow this job belongs to.
        history_limit: Keep at most this many history records (the most recent); the
            number dropped is counted in :attr:`history_dropped`. ``None`` keeps all.
        history_dropped: The count to start from (a job continued from elsewhere).
    """

    #: The id of the flow this job belongs to.
    flow_id: str = ""
    #: This job's id.
    job_id: str = attrs.field(factory=lambda: _new_job_id())
    #: The status: one of :class:`JobStatus`, or any string a user assigned.
    status: str = "pending"
    #: The entry routine of the job.
    current_routine_id: str | None = None
    #: Per-routine state dicts, by flow routine id.
    routine_states: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    # Given records (any iterable) become an ExecutionHistory in __attrs_post_init__.
    _history: ExecutionHistory = attrs.field(
        default=(),  # type: ignore[assignment]  # replaced in __attrs_post_init__
        alias="execution_history",
    )
    # The containers most jobs never use are made on first use (see _MadeOnUse).
    _pause_points: list[dict[str, Any]] | None = attrs.field(default=None, alias="pause_points")
    _pending_tasks: list[dict[str, Any]] | None = attrs.field(default=None, alias="pending_tasks")
    _deferred_events: list[dict[str, Any]] | None = attrs.field(
        default=None, alias="deferred_events"
    )
    _shared_data: dict[str, Any] | None = attrs.field(default=None, alias="shared_data")
    _shared_log: list[dict[str, Any]] | None = attrs.field(default=None, alias="shared_log")
    _output_log: list[dict[str, Any]] | None = attrs.field(default=None, alias="output_log")
    _metadata: dict[str, Any] | None = attrs.field(default=None, alias="metadata")
    _failed_tasks: list[dict[str, Any]] | None = attrs.field(default=None, alias="failed_tasks")
    #: The checkpoint given to the last pause (``None`` before any).
    checkpoint: dict[str, Any] | None = None
    #: When the job was created.
    created_at: datetime = attrs.field(factory=_now)
    # When the job last changed: a datetime, or the epoch float of the last booking.
    _updated_at: datetime | float = attrs.field(factory=_now, alias="updated_at")
    #: The most history records kept, or ``None`` for all.
    history_limit: int | None = attrs.field(default=None, kw_only=True)
    # The ``history_dropped`` given to the constructor, handed to the history at init
    # (the count lives in the ExecutionHistory; see the history_dropped property).
    _dropped_given: int = attrs.field(default=0, kw_only=True, alias="history_dropped")
    #: Where ``send_output`` forwards to (never serialized).
    output_handler: OutputHandler | None = attrs.field(default=None, kw_only=True)
    #: This job's execution tracker (never serialized).
    execution_tracker: ExecutionTracker | None = attrs.field(default=None, kw_only=True)
    #: How many times the output handler raised (each output is in :attr:`output_log`
    #: all the same).
    output_handler_failures: int = attrs.field(default=0, kw_only=True)
    #: The sequence number of the job's last checkpoint (0 before any): each checkpoint of
    #: a job store takes the next one, and a store never replaces a newer checkpoint with
    #: an older one.
    checkpoint_seq: int = attrs.field(default=0, kw_only=True)
    # The errors the job recorded (see the ``errors`` property); None until the first.
    _errors: list[ErrorRecord] | None = attrs.field(default=None, kw_only=True, alias="errors")

    _lock: threading.RLock = attrs.field(factory=threading.RLock, init=False)

    if TYPE_CHECKING:  # for type checkers: the descriptors are installed below the class

        @property
        def pause_points(self) -> list[dict[str, Any]]: ...

        @pause_points.setter
        def pause_points(self, value: list[dict[str, Any]]) -> None: ...

        @property
        def pending_tasks(self) -> list[dict[str, Any]]: ...

        @pending_tasks.setter
        def pending_tasks(self, value: list[dict[str, Any]]) -> None: ...

        @property
        def deferred_events(self) -> list[dict[str, Any]]: ...

        @deferred_events.setter
        def deferred_events(self, value: list[dict[str, Any]]) -> None: ...

        @property
        def shared_data(self) -> dict[str, Any]: ...

        @shared_data.setter
        def shared_data(self, value: dict[str, Any]) -> None: ...

        @property
        def shared_log(self) -> list[dict[str, Any]]: ...

        @shared_log.setter
        def shared_log(self, value: list[dict[str, Any]]) -> None: ...

        @property
        def output_log(self) -> list[dict[str, Any]]: ...

        @output_log.setter
        def output_log(self, value: list[dict[str, Any]]) -> None: ...

        @property
        def metadata(self) -> dict[str, Any]: ...

        @metadata.setter
        def metadata(self, value: dict[str, Any]) -> None: ...

        @property
        def failed_tasks(self) -> list[dict[str, Any]]: ...

        @failed_tasks.setter
        def failed_tasks(self, value: list[dict[str, Any]]) -> None: ...

    _cond: threading.Condition | None = attrs.field(default=None, init=False)
    _run: RunState | None = attrs.field(default=None, init=False)
    # The change listener (see the _listener property).
    _on_change: Callable[[JobStateChange], None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self.history_limit is not None and self.history_limit < 1:
            from routilux.exceptions import ConfigurationError

            msg = f"history_limit must be a positive int or None, got {self.history_limit!r}"
            raise ConfigurationError(msg, name="history_limit", value=self.history_limit)
        history = ExecutionHistory(self._history, self.history_limit, self._lock)
        history.dropped += self._dropped_given
        self._history = history

    def __repr__(self) -> str:
        return f"JobState[{self.job_id}:{self.status}]"

    @property
    def lock(self) -> threading.RLock:
        """
        The job's lock: every change of the job takes it. Hold it to read several parts of
        the job as one consistent snapshot (as serializing does); never while waiting for
        the job, whose handlers need it to make progress.

        .. versionadded:: 0.10
        """
        return self._lock

    @property
    def execution_history(self) -> ExecutionHistory:
        """
        The execution history, oldest first: a list-like :class:`ExecutionHistory` of
        :class:`ExecutionRecord`. Assigning any iterable of records replaces it (keeping
        :attr:`history_limit`).
        """
        return self._history

    @execution_history.setter
    def execution_history(self, records: Iterable[ExecutionRecord]) -> None:
        history = ExecutionHistory(records, self.history_limit, self._lock)
        with self._lock:
            old = self._history
            history.dropped += old.dropped
            self._adopt_history(history)
            if self._on_change is not None:
                self._history_changed(old.copy(), history.copy(), None)

    def _adopt_history(self, history: ExecutionHistory) -> None:
        # With the lock held: make ``history`` this job's history; the one it replaces
        # no longer reports to this job.
        self._history._owner = None
        history._owner = self if self._on_change is not None else None
        self._history = history

    @property
    def history_dropped(self) -> int:
        """
        How many history records were dropped because of :attr:`history_limit`: every
        record the bound pushed out, whether booked by the job, added through
        :attr:`execution_history`, assigned or loaded. Assignable (a loaded job starts
        from its document's count).
        """
        return self._history.dropped

    @history_dropped.setter
    def history_dropped(self, count: int) -> None:
        with self._lock:
            self._history.dropped = count

    @property
    def errors(self) -> list[ErrorRecord]:
        """
        Every handler error the job recorded, oldest first: a new list of
        :class:`ErrorRecord` (routine id, slot, exception type, message, attempt, time,
        what the error strategy did). A job can be ``completed`` and still have errors: a
        downstream error is recorded and the job goes on by default (``routilux run`` exits
        with code 5 then). With :attr:`history_limit`, the last that many are kept.

        .. versionadded:: 0.10
        """
        with self._lock:
            return list(self._errors or ())

    def _record_error(self, error: ErrorRecord) -> None:
        with self._lock:
            errors = self._errors
            if errors is None:
                errors = self._errors = []
            errors.append(error)
            limit = self.history_limit
            if limit is not None and len(errors) > limit:
                del errors[0]
            self._changed(ChangeKind.ERROR, error.routine_id, None, error, error.routine_id)

    @property
    def _listener(self) -> Callable[[JobStateChange], None] | None:
        # The listener every change is reported to (the scheduler's plugin relay), or None.
        return self._on_change

    @_listener.setter
    def _listener(self, listener: Callable[[JobStateChange], None] | None) -> None:
        with self._lock:
            self._on_change = listener
            # The history reports its public changes only while someone listens (so that
            # a job without plugins and its history make no reference cycle).
            self._history._owner = self if listener is not None else None

    @property
    def updated_at(self) -> datetime:
        """
        When the job last changed (naive local time).
        """
        when = self._updated_at
        if when.__class__ is float:
            when = self._updated_at = datetime.fromtimestamp(when)
        return when  # type: ignore[return-value]

    @updated_at.setter
    def updated_at(self, when: datetime) -> None:
        self._updated_at = when

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

    # -- change notification --------------------------------------------------------

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

    def _history_changed(self, old: Any, new: Any, routine_id: str | None) -> None:
        # With the lock held: the history changed through its public interface (an append:
        # ``old`` None and ``new`` the record; else the records before and after).
        self._changed(ChangeKind.HISTORY, None, old, new, routine_id, datetime.now())

    def _set_status(self, status: str) -> None:
        # Only routilux.lifecycle calls this: every status change goes through its table.
        with self._lock:
            old = self.status
            self.status = status
            self.updated_at = datetime.now()
            if old != status:
                self._changed(ChangeKind.STATUS, None, old, status, None)
            if self._cond is not None:
                self._cond.notify_all()

    # -- routine states -------------------------------------------------------------

    def update_routine_state(self, routine_id: str, state: dict[str, Any]) -> None:
        """
        Replace the state of ``routine_id`` with a shallow copy of ``state``.
        """
        new = dict(state)
        with self._lock:
            old = self.routine_states.get(routine_id)
            self.routine_states[routine_id] = new
            self.updated_at = datetime.now()
            self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)

    def merge_routine_state(self, routine_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        """
        Merge ``updates`` into the state of ``routine_id`` atomically and return a copy of
        the result. Keys not in ``updates`` are kept.

        .. versionadded:: 0.10
        """
        with self._lock:
            return dict(self._merge_state(routine_id, updates))

    def _merge_state(self, routine_id: str, updates: dict[str, Any]) -> dict[str, Any]:
        # merge_routine_state without the copy (the scheduler's bookkeeping).
        with self._lock:
            old = self.routine_states.get(routine_id)
            # A state that is not a dict (a user may assign anything) is replaced.
            new = {**old, **updates} if isinstance(old, dict) else dict(updates)
            self.routine_states[routine_id] = new
            self.updated_at = datetime.now()
            if self._on_change is not None:
                self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)
            return new

    def _drop_state_keys(self, routine_id: str, stale: dict[str, Any]) -> None:
        # Remove the scheduler's keys ``stale`` from a routine state, where they still hold
        # the values it wrote (a handler may have written those keys since: they stay).
        with self._lock:
            old = self.routine_states.get(routine_id)
            if not isinstance(old, dict):
                return
            new = {k: v for k, v in old.items() if k not in stale or stale[k] != v}
            if len(new) != len(old):
                self.routine_states[routine_id] = new
                if self._on_change is not None:
                    self._changed(ChangeKind.ROUTINE_STATE, routine_id, old, dict(new), routine_id)

    def get_routine_state(self, routine_id: str) -> dict[str, Any] | None:
        """
        Return the state dict of ``routine_id`` (the stored dict itself), or ``None``.
        """
        with self._lock:
            return self.routine_states.get(routine_id)

    # -- history --------------------------------------------------------------------

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """
        Append an :class:`ExecutionRecord` stamped now.
        """
        with self._lock:
            self._book_locked(routine_id, event_name, data, time.time())

    def _book_locked(self, routine_id: str, event_name: str, data: Any, when: float) -> None:
        # With the lock held: append one history record stamped ``when`` (epoch seconds).
        history = self._history
        items = history._items
        if history.maxlen is not None and len(items) >= history.maxlen:
            history.dropped += 1
        items.append((routine_id, event_name, data, when))  # the history's booking form
        self._updated_at = when
        if self._on_change is not None:
            self._changed(ChangeKind.HISTORY, None, None, self._history[-1], routine_id)

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        """
        Return a new list of the history, optionally only one routine's, sorted by time.
        """
        with self._lock:
            records = list(self.execution_history)
        if routine_id is not None:
            records = [r for r in records if r.routine_id == routine_id]
        records.sort(key=lambda r: r.timestamp)
        return records

    # -- deferred events and pause points ------------------------------------------

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
            self.updated_at = datetime.now()
            self._changed(ChangeKind.DEFERRED_EVENT, event_name, None, dict(entry), routine_id)

    def _set_paused(
        self, reason: str = "", checkpoint: dict[str, Any] | None = None, **counts: Any
    ) -> None:
        point = {
            "timestamp": datetime.now().isoformat(),
            "reason": reason,
            "current_routine_id": self.current_routine_id,
            "checkpoint": dict(checkpoint) if checkpoint else {},
            **counts,
        }
        with self._lock:
            # Refused (JobStateError) before anything is recorded.
            lifecycle.next_status(self.status, lifecycle.Action.PAUSE, job_id=self.job_id)
            self.pause_points.append(point)
            self.checkpoint = point["checkpoint"]
            self._changed(ChangeKind.PAUSE_POINT, None, None, dict(point), None)
            lifecycle.transition(self, lifecycle.Action.PAUSE)

    def _set_running(self) -> None:
        # A paused job runs again; any other status is left alone (SPEC 9.2).
        with self._lock:
            if self.status == "paused":
                lifecycle.transition(self, lifecycle.Action.RESUME)

    def _set_cancelled(self, reason: str = "") -> None:
        with self._lock:
            lifecycle.next_status(self.status, lifecycle.Action.CANCEL, job_id=self.job_id)
            if reason:
                self.update_routine_state("_cancellation", {"reason": reason})
            lifecycle.transition(self, lifecycle.Action.CANCEL)

    def _keep_failed(self, tasks: Iterable[dict[str, Any]]) -> None:
        # A failing job keeps what its failure dropped, for retry; the pending work of a
        # paused job that fails goes with it, in emission order.
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
            self.updated_at = datetime.now()
            self._changed(ChangeKind.FAILED_TASKS, None, None, added, None)

    def _take_failed(self) -> list[dict[str, Any]]:
        with self._lock:
            failed = self.failed_tasks
            if failed:
                self.failed_tasks = []
                self.updated_at = datetime.now()
                self._changed(ChangeKind.FAILED_TASKS, None, failed, [], None)
            return failed

    def _add_pending(self, tasks: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            added = list(tasks)
            if not added:
                return
            self.pending_tasks.extend(added)
            self.updated_at = datetime.now()
            self._changed(ChangeKind.PENDING_TASKS, None, None, added, None)

    def _drop_pending(self) -> None:
        # Cancel: the activations a pause set aside go with the rest of the job's queue.
        with self._lock:
            pending = self.pending_tasks
            if pending:
                self.pending_tasks = []
                self.updated_at = datetime.now()
                self._changed(ChangeKind.PENDING_TASKS, None, pending, [], None)

    def _take_resume_work(
        self, *, failed: bool = False
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # What a resume (or, with ``failed``, a retry) runs: the deferred events, and the
        # pending activations (and the failed ones) in emission order.
        with self._lock:
            deferred, tasks = self.deferred_events, self.pending_tasks
            self.deferred_events, self.pending_tasks = [], []
            if deferred or tasks:
                self.updated_at = datetime.now()
                if deferred:
                    self._changed(ChangeKind.DEFERRED_EVENT, None, deferred, [], None)
                if tasks:
                    self._changed(ChangeKind.PENDING_TASKS, None, tasks, [], None)
            if failed:
                tasks = sorted(tasks + self._take_failed(), key=_task_order)
            return deferred, tasks

    # -- shared data and log --------------------------------------------------------

    def update_shared_data(self, key: str, value: Any) -> None:
        """
        Set ``shared_data[key] = value``.
        """
        with self._lock:
            old = self.shared_data.get(key)
            self.shared_data[key] = value
            self.updated_at = datetime.now()
            self._changed(ChangeKind.SHARED_DATA, key, old, value, None)

    def get_shared_data(self, key: str, default: Any = None) -> Any:
        """
        Return ``shared_data[key]``, or ``default``.
        """
        with self._lock:
            return self.shared_data.get(key, default)

    def modify_shared_data(self, key: str, func: Callable[[Any], Any], default: Any = None) -> Any:
        """
        Replace ``shared_data[key]`` by ``func(current value or default)`` atomically, so
        read-modify-write updates from concurrent routines are never lost. Returns the new value.

        .. versionadded:: 0.10
        """
        with self._lock:
            old = self.shared_data.get(key, default)
            new = func(old)
            self.shared_data[key] = new
            self.updated_at = datetime.now()
            self._changed(ChangeKind.SHARED_DATA, key, old, new, None)
            return new

    def append_to_shared_log(self, entry: dict[str, Any]) -> None:
        """
        Append ``entry`` to the shared log, stamping a copy with the time if it has none.

        Raises:
            ValueError: ``entry`` is not a dict.
        """
        if not isinstance(cast(object, entry), dict):
            from routilux.exceptions import ConfigurationError

            msg = "Entry must be a dictionary"
            raise ConfigurationError(msg, name="entry", value=entry)
        if "timestamp" not in entry:
            entry = {**entry, "timestamp": datetime.now().isoformat()}
        with self._lock:
            self.shared_log.append(entry)
            self.updated_at = datetime.now()
            self._changed(ChangeKind.SHARED_LOG, None, None, entry, None)

    def get_shared_log(
        self, filter_func: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """
        Return a copy of the shared log, or of the entries ``filter_func`` accepts.
        """
        with self._lock:
            entries = list(self.shared_log)
        if filter_func is None:
            return entries
        return [e for e in entries if filter_func(e)]

    def set_metadata(self, key: str, value: Any) -> None:
        """
        Set ``metadata[key] = value``.

        .. versionadded:: 0.10
        """
        with self._lock:
            old = self.metadata.get(key)
            self.metadata[key] = value
            self.updated_at = datetime.now()
            self._changed(ChangeKind.METADATA, key, old, value, None)

    # -- output ---------------------------------------------------------------------

    def set_output_handler(self, handler: OutputHandler | None) -> None:
        """
        Forward every ``send_output`` to ``handler`` (``None`` stops forwarding).
        """
        self.output_handler = handler

    def send_output(self, routine_id: str, output_type: str, data: dict[str, Any]) -> None:
        """
        Log an output in :attr:`output_log`, then forward it to the output handler, if any.

        A handler that raises never fails the job, whatever the warnings filter says: the
        output is in :attr:`output_log` already, the failure is logged through structlog
        and counted in :attr:`output_handler_failures`, and a
        :class:`~routilux.exceptions.RoutiluxWarning` is issued (with a warnings filter of
        ``"error"`` it is not raised into the job).
        """
        ts = datetime.now()
        entry = {
            "routine_id": routine_id,
            "output_type": output_type,
            "data": data,
            "timestamp": ts.isoformat(),
        }
        with self._lock:
            self.output_log.append(entry)
            self.updated_at = ts
            self._changed(ChangeKind.OUTPUT, output_type, None, entry, routine_id)
        handler = self.output_handler
        if handler is None:
            return
        try:
            handler.handle(
                job_id=self.job_id,
                routine_id=routine_id,
                output_type=output_type,
                data=data,
                timestamp=ts,
            )
        except Exception as exc:  # noqa: BLE001 - a broken handler must not stop the job
            with self._lock:
                self.output_handler_failures += 1
            log = bind(flow_id=self.flow_id, job_id=self.job_id, routine_id=routine_id)
            log.warning("output_handler_failed", handler=type(handler).__name__, error=repr_of(exc))
            msg = f"Output handler failed: {text_of(exc)}"
            # A filter of "error" raises it here: it is logged and counted already.
            with contextlib.suppress(Warning):
                warnings.warn(msg, RoutiluxWarning, stacklevel=3)

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

    # -- persistence ----------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """
        Return the job as plain JSON-able data (everything but the output handler and
        the live runtime objects).
        """
        from routilux.codec._job_states import dump_job_state

        return dump_job_state(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Replace this job's state with :meth:`serialize` output. ``data`` is not changed.

        Raises:
            DeserializationError: ``data`` is malformed; the message gives the bad field's path.
        """
        from routilux.codec._job_states import load_job_state_into

        load_job_state_into(self, data)

    def restore_from(self, other: JobState) -> None:
        """
        Replace this job's state with the state of ``other``, a JobState just built from a
        document (what :meth:`deserialize` does). Everything :meth:`serialize` writes is
        taken over from ``other``, not copied, so ``other`` must not be used afterwards.
        This job keeps its output handler and lets go of its running job, execution
        tracker and change listener; its waiters are woken.

        .. versionadded:: 0.10
        """
        with other._lock:
            history = ExecutionHistory(other._history, other.history_limit, self._lock)
            history.dropped = other._history.dropped
            containers = {name: getattr(other, "_" + name) for name in _LAZY_CONTAINERS}
        with self._lock:
            self.flow_id = other.flow_id
            self.job_id = other.job_id
            lifecycle.restore(self, other.status)
            self.current_routine_id = other.current_routine_id
            self.routine_states = other.routine_states
            self._listener = None
            self._adopt_history(history)
            for name, value in containers.items():
                setattr(self, "_" + name, value)
            self._errors = other._errors
            self.output_handler_failures = other.output_handler_failures
            self.checkpoint_seq = other.checkpoint_seq
            self.checkpoint = other.checkpoint
            self.created_at = other.created_at
            self._updated_at = other._updated_at
            self.history_limit = other.history_limit
            self.execution_tracker = None
            self._run = None
            if self._cond is not None:
                self._cond.notify_all()

    def save(self, filepath: str | PathLike[str]) -> None:
        """
        Write the job as UTF-8 JSON to ``filepath``, creating parent folders.
        """
        import json
        from pathlib import Path

        path = Path(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.serialize(), indent=2, ensure_ascii=False)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, filepath: str | PathLike[str]) -> JobState:
        """
        Read a job written by :meth:`save`.

        Raises:
            FileNotFoundError: There is no such file.
            DeserializationError: The file is not a serialized JobState.
        """
        import json
        from pathlib import Path

        path = Path(filepath)
        if not path.exists():
            msg = f"JobState file not found: {path}"
            raise FileNotFoundError(msg)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            from routilux.exceptions import DeserializationError

            msg = f"{path} is not valid JSON: {exc}"
            raise DeserializationError(msg) from exc
        job = cls()
        job.deserialize(data)
        return job


#: The containers of a JobState made on first use: name -> (factory, documentation).
_LAZY_CONTAINERS = {
    "pause_points": (list, "One entry per pause: timestamp, reason, checkpoint and counts."),
    "pending_tasks": (list, "Activations that were queued when the job paused, as data."),
    "deferred_events": (list, "Events to emit when the job resumes."),
    "shared_data": (dict, "Read/write data shared by the job's routines."),
    "shared_log": (list, "Append-only log shared by the job's routines."),
    "output_log": (list, "Every ``send_output`` of the job."),
    "metadata": (dict, "Free-form metadata of the job."),
    "failed_tasks": (
        list,
        "What a failure dropped, as data: the failed activations (with their error) and the "
        "work that was queued or pending then; :meth:`Flow.retry` runs them again.",
    ),
}

for _name, (_factory, _doc) in _LAZY_CONTAINERS.items():
    _container: _MadeOnUse[Any] = _MadeOnUse(_factory)
    _container.__set_name__(JobState, _name)
    _container.__doc__ = _doc
    setattr(JobState, _name, _container)


def _task_order(task: dict[str, Any]) -> int:
    seq = task.get("seq")
    return seq if isinstance(seq, int) else 0


def _new_job_id() -> str:
    import uuid

    return str(uuid.uuid4())

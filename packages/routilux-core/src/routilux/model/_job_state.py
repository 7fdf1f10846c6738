"""
JobState: everything that changes while one job of a flow runs, and its records.

A JobState is made of parts, each in a module of its own: the containers made on first use
(``_job_containers``), its routine states (``_job_routines``), the data its routines share
(``_job_shared``) and its work as data (``_job_tasks``). This module holds the core:
status, history, errors, waiting, persistence, and the engine's interface to the job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from routilux.model._error_record import ErrorRecord
from routilux.model._history import ExecutionHistory, book, pack, set_owner
from routilux.model._job_changes import FINAL_STATUSES, ChangeKind, JobStateChange, JobStatus
from routilux.model._job_containers import CONTAINER_NAMES
from routilux.model._job_routines import JobRoutines
from routilux.model._job_shared import JobShared
from routilux.model._job_tasks import JobTasks
from routilux.model._job_waiting import JobWaiting
from routilux.model._lifecycle import restore
from routilux.model._records import NOT_EMITTED, ExecutionRecord
from routilux.model._tracker import ExecutionTracker, PackedTracker, pack_tracker


if TYPE_CHECKING:
    from os import PathLike

    from routilux.model._context import RunState
    from routilux.model._output import OutputHandler
    from routilux.model._records import Booking, Given


__all__ = [
    "FINAL_STATUSES",
    "ChangeKind",
    "ErrorRecord",
    "ExecutionRecord",
    "JobState",
    "JobStateChange",
    "JobStatus",
]


def _stamp(when: datetime | float) -> datetime:
    # A time kept as an epoch float (what the job stamps itself) as the datetime it stands for.
    return datetime.fromtimestamp(when) if isinstance(when, float) else when


@attrs.define(eq=False, repr=False)
class JobState(JobRoutines, JobShared, JobTasks, JobWaiting):
    """
    The runtime state of one job (one ``Flow.execute`` or ``Flow.submit``).

    Every mutation takes one lock, and the read methods return copies, so a JobState can be
    read and written from any number of threads, with or without the GIL.

    The methods and properties marked *engine interface* are what the engine's run of the
    job uses; applications have no need of them.

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
    # The routine states (see JobRoutines): a dict, or packed when the job finished.
    _routine_states: Any = attrs.field(default=None, alias="routine_states")
    # Given records (any iterable) become an ExecutionHistory in __attrs_post_init__.
    _history: ExecutionHistory = attrs.field(
        default=(),  # type: ignore[assignment]  # replaced in __attrs_post_init__
        alias="execution_history",
    )
    # The containers most jobs never use are made on first use (see JobContainers).
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
    # When the job was created, and when it last changed: a datetime given, or an epoch
    # float (what the job stamps itself; see the created_at and updated_at properties).
    _created_at: datetime | float = attrs.field(factory=time.time, alias="created_at")
    _updated_at: datetime | float = attrs.field(factory=time.time, alias="updated_at")
    #: The most history records kept, or ``None`` for all.
    history_limit: int | None = attrs.field(default=None, kw_only=True)
    # The ``history_dropped`` given to the constructor, handed to the history at init
    # (the count lives in the ExecutionHistory; see the history_dropped property).
    _dropped_given: int = attrs.field(default=0, kw_only=True, alias="history_dropped")
    #: Where ``send_output`` forwards to (never serialized).
    output_handler: OutputHandler | None = attrs.field(default=None, kw_only=True)
    # This job's execution tracker (see the execution_tracker property): packed when the
    # job finished.
    _tracker: ExecutionTracker | PackedTracker | None = attrs.field(
        default=None, kw_only=True, alias="execution_tracker"
    )
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

    _cond: threading.Condition | None = attrs.field(default=None, init=False)
    _run: RunState | None = attrs.field(default=None, init=False)
    # The change listener (see set_change_listener).
    _on_change: Callable[[JobStateChange], None] | None = attrs.field(default=None, init=False)
    # Someone was given the routine states (see JobRoutines): they are never packed.
    _states_given: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        if self.history_limit is not None and self.history_limit < 1:
            from routilux.exceptions import ConfigurationError

            msg = f"history_limit must be a positive int or None, got {self.history_limit!r}"
            raise ConfigurationError(msg, name="history_limit", value=self.history_limit)
        history = ExecutionHistory(self._history, self.history_limit, self._lock)
        history.dropped += self._dropped_given
        self._history = history
        if self._routine_states is None:
            self._routine_states = {}
        else:
            self._states_given = True

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
                self.history_changed(old.copy(), history.copy(), None)

    def _adopt_history(self, history: ExecutionHistory) -> None:
        # With the lock held: make ``history`` this job's history; the one it replaces
        # no longer reports to this job, and the job's tracker follows the new one.
        tracker = self.execution_tracker  # made again first, if packed: it views the old one
        set_owner(self._history, None)
        set_owner(history, self if self._on_change is not None else None)
        self._history = history
        if tracker is not None:
            tracker.follow(history)

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

    def record_error(self, error: ErrorRecord) -> None:
        """
        Add ``error`` to :attr:`errors` (keeping the last :attr:`history_limit`). Engine
        interface.
        """
        with self._lock:
            errors = self._errors
            if errors is None:
                errors = self._errors = []
            errors.append(error)
            limit = self.history_limit
            if limit is not None and len(errors) > limit:
                del errors[0]
            self._changed(ChangeKind.ERROR, error.routine_id, None, error, error.routine_id)

    def set_change_listener(self, listener: Callable[[JobStateChange], None] | None) -> None:
        """
        Report every change of the job to ``listener`` (the engine's plugin relay; it must
        not block: it is called with the lock held), or to nobody. Engine interface.
        """
        with self._lock:
            self._on_change = listener
            # The history reports its public changes only while someone listens (so that
            # a job without plugins and its history make no reference cycle).
            set_owner(self._history, self if listener is not None else None)

    @property
    def _listener(self) -> Callable[[JobStateChange], None] | None:
        # The change listener (see set_change_listener).
        return self._on_change

    @_listener.setter
    def _listener(self, listener: Callable[[JobStateChange], None] | None) -> None:
        self.set_change_listener(listener)

    @property
    def created_at(self) -> datetime:
        """
        When the job was created (naive local time). Assignable.
        """
        return _stamp(self._created_at)

    @created_at.setter
    def created_at(self, when: datetime) -> None:
        self._created_at = when

    @property
    def updated_at(self) -> datetime:
        """
        When the job last changed (naive local time). Assignable.
        """
        return _stamp(self._updated_at)

    @updated_at.setter
    def updated_at(self, when: datetime) -> None:
        self._updated_at = when

    # -- change notification --------------------------------------------------------

    def history_changed(self, old: Any, new: Any, routine_id: str | None) -> None:
        """
        Report a change of the job's history made through its public interface, with the
        lock held (the history calls it: see ``HistoryOwner``): an append as ``old``
        None and ``new`` the record, anything else as the records before and after.
        """
        self._changed(ChangeKind.HISTORY, None, old, new, routine_id, datetime.now())

    def _set_status(self, status: str) -> None:
        # Only routilux.lifecycle calls this: every status change goes through its table.
        with self._lock:
            old = self.status
            self.status = status
            self._updated_at = time.time()
            if old != status:
                self._changed(ChangeKind.STATUS, None, old, status, None)
            if status in FINAL_STATUSES:
                self._pack_states()
            if self._cond is not None:
                self._cond.notify_all()

    # -- history --------------------------------------------------------------------

    def record_execution(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """
        Append an :class:`ExecutionRecord` stamped now.
        """
        self._book((routine_id, event_name, data, time.time()))

    def record_own(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """
        :meth:`record_execution` of a record whose ``data`` no one but the job holds (the
        engine's own): once the job finishes, it may be kept packed. Engine interface.

        .. versionadded:: 0.10
        """
        self._book((routine_id, event_name, data, time.time(), NOT_EMITTED))

    def record_emitted(
        self,
        routine_id: str,
        event_name: str,
        data: dict[str, Any],
        target: str | Given | None,
        when: float,
    ) -> None:
        """
        Append the record of an event ``routine_id`` emitted, stamped ``when`` (epoch
        seconds), that was delivered first to ``target`` (a flow routine id, or ``None``;
        a :class:`~routilux.model._records.Given` when code other than the job holds
        ``data``): the one booking of that emit, which the job's execution tracker reads
        too. Engine interface.
        """
        self._book((routine_id, event_name, data, when, target))

    def pack_finished(self) -> None:
        """
        Keep the history and the execution tracker of a finished job packed until they are
        read or changed, as its run is released (no activation holds data of the history
        any more). Engine interface.

        .. versionadded:: 0.10
        """
        with self._lock:
            if not (self._pending_tasks or self._failed_tasks):  # their data is the history's
                pack(self._history)
            tracker = self._tracker
            if tracker.__class__ is not ExecutionTracker:
                return
            packed = pack_tracker(tracker, self._history, self._lock)
            if packed is not None:
                self._tracker = packed

    def _book(self, item: Booking) -> None:
        # Append one booking to the history (see routilux.model._history.book).
        with self._lock:
            book(self._history, item)
            self._updated_at = item[3]
            if self._on_change is not None:
                self._changed(ChangeKind.HISTORY, None, None, self._history[-1], item[0])

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
            containers = {name: getattr(other, "_" + name) for name in CONTAINER_NAMES}
        with self._lock:
            self.flow_id = other.flow_id
            self.job_id = other.job_id
            restore(self, other.status)
            self.current_routine_id = other.current_routine_id
            self._routine_states = other._routine_states
            self._states_given = other._states_given
            self._listener = None
            self._adopt_history(history)
            for name, value in containers.items():
                setattr(self, "_" + name, value)
            self._errors = other._errors
            self.output_handler_failures = other.output_handler_failures
            self.checkpoint_seq = other.checkpoint_seq
            self.checkpoint = other.checkpoint
            self._created_at = other._created_at
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


def _new_job_id() -> str:
    import uuid

    return str(uuid.uuid4())

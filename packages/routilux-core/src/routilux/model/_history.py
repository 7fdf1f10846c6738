"""
A job's execution history: :class:`ExecutionRecord` and the list-like
:class:`ExecutionHistory` that holds them.

The functions :func:`book`, :func:`set_owner` and :func:`emitted_since` are the interface
of the JobState and its ExecutionTracker to a history.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, overload

import attrs


__all__ = [
    "Booking",
    "EmitRecord",
    "Emitted",
    "ExecutionHistory",
    "ExecutionRecord",
    "HistoryOwner",
    "as_record",
    "book",
    "emitted_since",
    "set_owner",
]


@attrs.define(eq=False, repr=False, init=False)
class ExecutionRecord:
    """
    One entry of a job's execution history: a routine id, what happened and its data.
    """

    #: The flow routine id the record is about.
    routine_id: str
    #: What happened: ``start``, ``completed``, ``error``, or the name of an emitted event.
    event_name: str
    #: The payload (event data, error details...).
    data: dict[str, Any]
    #: When it happened (naive local time, as the original library used).
    timestamp: datetime

    def __init__(
        self,
        routine_id: str = "",
        event_name: str = "",
        data: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        self.routine_id = routine_id
        self.event_name = event_name
        self.data = {} if data is None else data
        self.timestamp = datetime.now() if timestamp is None else timestamp

    def __repr__(self) -> str:
        return f"ExecutionRecord[{self.routine_id}.{self.event_name}@{self.timestamp}]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionRecord):
            return NotImplemented
        return (self.routine_id, self.event_name, self.data, self.timestamp) == (
            other.routine_id,
            other.event_name,
            other.data,
            other.timestamp,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable record compared by value

    def serialize(self) -> dict[str, Any]:
        """
        Return the record as plain JSON-able data.
        """
        return {
            "_type": "ExecutionRecord",
            "routine_id": self.routine_id,
            "event_name": self.event_name,
            "data": self.data,
            "timestamp": self.timestamp.isoformat(),
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Fill this record from :meth:`serialize` output (the argument is not changed).
        """
        from routilux.codec._history import load_record_into

        load_record_into(self, data)


# The override: attrs's __attrs_init__ of a subclass takes one more field, as it should.
@attrs.define(eq=False, repr=False, init=False)
class EmitRecord(ExecutionRecord):  # type: ignore[override]
    """
    The :class:`ExecutionRecord` of an event a routine emitted in a job, which also names
    the routine the event was delivered to first (the target the job's
    :class:`~routilux.execution_tracker.ExecutionTracker` shows).
    """

    #: The flow routine id of the first routine the event was delivered to, or ``None``.
    target_routine_id: str | None

    def __init__(
        self,
        routine_id: str = "",
        event_name: str = "",
        data: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
        target_routine_id: str | None = None,
    ) -> None:
        super().__init__(routine_id, event_name, data, timestamp)
        self.target_routine_id = target_routine_id


Booking = (
    tuple[str, str, dict[str, Any], "float | datetime"]
    | tuple[str, str, dict[str, Any], float, "str | None"]
)
"""A record as the scheduler books it: routine id, event name, data, and the time as an
epoch float (booked live) or a datetime (loaded from a document); an emitted event's
booking adds the first routine it was delivered to (it becomes an :class:`EmitRecord`)."""

Emitted = tuple["float | datetime", str, str, "str | None", dict[str, Any]]
"""An emitted event as :func:`emitted_since` returns it: time, source routine id, event
name, target routine id, data."""


class HistoryOwner(Protocol):
    """
    What hears of a history's public changes (the JobState it belongs to).
    """

    def history_changed(self, old: Any, new: Any, routine_id: str | None) -> None:
        """
        Hear of one change, with the history's lock held: an append as ``old`` None and
        ``new`` the record, anything else as the records before and after.
        """


_fromtimestamp = datetime.fromtimestamp


def as_record(item: ExecutionRecord | Booking) -> ExecutionRecord:
    """
    Return ``item`` as an :class:`ExecutionRecord` (a booking becomes a new record).
    """
    if item.__class__ is not tuple:
        return item  # type: ignore[return-value]  # a record already
    if len(item) == 4:
        rid, name, data, when = item
        if isinstance(when, float):
            when = _fromtimestamp(when)
        return ExecutionRecord(rid, name, data, when)
    rid, name, data, stamp, target = item
    return EmitRecord(rid, name, data, _fromtimestamp(stamp), target)


def _require_record(value: Any) -> ExecutionRecord:
    if not isinstance(value, ExecutionRecord):
        msg = f"execution history items must be ExecutionRecord, got {type(value).__name__}"
        raise TypeError(msg)
    return value


class ExecutionHistory(MutableSequence[ExecutionRecord]):
    """
    A job's execution history: a list of :class:`ExecutionRecord`, oldest first.

    It behaves as a list of records (indexing, slicing, iteration, ``append``, ``extend``,
    ``del``, ``len``, ``sort``, ``+`` with a list giving a list, ``==`` with any sequence),
    though it is not a ``list`` subclass. With ``maxlen`` it keeps the most recent
    records only, as a bounded ``deque`` does, and counts in :attr:`dropped` every record
    its bound drops, however it was added. Every operation takes the job's lock, so
    it can be read while the job runs.

    The history of a JobState reports each change made through this interface to the
    job's change listener (the ``routilux_job_state_changed`` hook): an appended record
    as ``old=None, new=record``, anything else (insert, assignment, deletion, sort,
    clear...) as ``old=`` the records before, ``new=`` the records after.

    The scheduler books records as compact tuples (:data:`Booking`, appended by
    :func:`book` with the job's lock held); each becomes its :class:`ExecutionRecord`
    the first time it is read, and that object is kept, so reading the same index twice
    gives the same object.
    """

    __slots__ = ("_items", "_lock", "_owner", "dropped", "maxlen", "rewrites")

    def __init__(
        self,
        records: Iterable[ExecutionRecord] = (),
        maxlen: int | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        #: The most records kept, or ``None``.
        self.maxlen = maxlen
        #: How many records the bound (``maxlen``) has dropped, counted exactly.
        self.dropped = 0
        #: How many changes other than appends it had (an insert, an assignment, a
        #: deletion, a sort...): a checkpoint delta writes a history that changed so whole.
        self.rewrites = 0
        self._lock = lock if lock is not None else threading.RLock()
        # Hears about public changes (see set_owner): set by the job only while it has a
        # change listener (so that a job and its history make no reference cycle).
        self._owner: HistoryOwner | None = None
        items: Any = records.entries() if isinstance(records, ExecutionHistory) else records
        self._items: Any = []
        if maxlen is None:
            self._items = list(items)
        else:
            self._replace(items if isinstance(items, (list, tuple)) else list(items))

    # -- the scheduler's side ---------------------------------------------------------

    def entries(self) -> list[ExecutionRecord | Booking]:
        """
        Return the stored entries as they are, oldest first (a new list): records, and
        the bookings no one has read yet (:func:`as_record` turns one into its record).
        Serializers read these, so that writing a job does not make a record per booking.

        .. versionadded:: 0.10
        """
        with self._lock:
            return list(self._items)

    def _record_at(self, index: int) -> ExecutionRecord:
        # With the lock held.
        item = self._items[index]
        if item.__class__ is tuple:
            item = self._items[index] = as_record(item)
        return item  # type: ignore[no-any-return]

    def _records(self) -> list[ExecutionRecord]:
        # With the lock held: turn every booking into its record; return them all.
        items = self._items
        for i, item in enumerate(items):
            if item.__class__ is tuple:
                items[i] = as_record(item)
        return list(items)

    def _before(self) -> list[ExecutionRecord] | None:
        # With the lock held: the records before a change, when a listener will hear of it.
        return self._records() if self._owner is not None else None

    def _replaced(self, old: list[ExecutionRecord] | None) -> None:
        # With the lock held, after a change that is not an append: count it, tell the listener.
        self.rewrites += 1
        owner = self._owner
        if owner is not None and old is not None:
            owner.history_changed(old, self._records(), None)

    def _appended(self, records: list[ExecutionRecord]) -> None:
        # With the lock held, after appending ``records``: tell the listener, one by one.
        owner = self._owner
        if owner is not None:
            for record in records:
                owner.history_changed(None, record, record.routine_id)

    def _make_room(self, count: int) -> None:
        # With the lock held, before appending ``count`` items: count what the bound drops.
        maxlen = self.maxlen
        if maxlen is not None:
            over = len(self._items) + count - maxlen
            if over > 0:
                self.dropped += over

    # -- the list interface -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> ExecutionRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[ExecutionRecord]: ...

    def __getitem__(self, index: int | slice) -> ExecutionRecord | list[ExecutionRecord]:
        with self._lock:
            if isinstance(index, slice):
                return self._records()[index]
            return self._record_at(index)

    @overload
    def __setitem__(self, index: int, value: ExecutionRecord) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[ExecutionRecord]) -> None: ...

    def __setitem__(self, index: int | slice, value: Any) -> None:
        with self._lock:
            old = self._before()
            if isinstance(index, slice):
                records = self._records()
                records[index] = [_require_record(v) for v in value]
                self._replace(records)
            else:
                self._items[index] = _require_record(value)
            self._replaced(old)

    def __delitem__(self, index: int | slice) -> None:
        with self._lock:
            old = self._before()
            if isinstance(index, slice):
                items = list(self._items)
                del items[index]
                self._replace(items)
            else:
                del self._items[index]
            self._replaced(old)

    def _replace(self, items: list[Any] | tuple[Any, ...]) -> None:
        # With the lock held: store ``items`` (a new list, or a tuple only when bounded),
        # the newest ``maxlen`` of them when bounded (the others are counted as dropped).
        maxlen = self.maxlen
        if maxlen is None:
            self._items = items
            return
        if len(items) > maxlen:
            self.dropped += len(items) - maxlen
        self._items = deque(items, maxlen)

    def insert(self, index: int, value: ExecutionRecord) -> None:
        """
        Insert a record before ``index`` (a full bounded history refuses, as a deque does).
        """
        record = _require_record(value)
        with self._lock:
            old = self._before()
            self._items.insert(index, record)
            self._replaced(old)

    def append(self, value: ExecutionRecord) -> None:
        """
        Append a record (a full bounded history drops its oldest, counted in :attr:`dropped`).
        """
        record = _require_record(value)
        with self._lock:
            self._make_room(1)
            self._items.append(record)
            self._appended([record])

    def extend(self, values: Iterable[ExecutionRecord]) -> None:
        """
        Append records in order.
        """
        records = [_require_record(v) for v in values]
        with self._lock:
            self._make_room(len(records))
            self._items.extend(records)
            self._appended(records)

    def pop(self, index: int = -1) -> ExecutionRecord:
        """
        Remove and return the record at ``index`` (the last by default).
        """
        with self._lock:
            old = self._before()
            record = self._record_at(index)
            del self._items[index]
            self._replaced(old)
            return record

    def reverse(self) -> None:
        """
        Reverse the records in place.
        """
        with self._lock:
            old = self._before()
            self._items.reverse()
            self._replaced(old)

    def clear(self) -> None:
        """
        Remove every record.
        """
        with self._lock:
            if not self._items:
                return
            old = self._before()
            self._items.clear()
            self._replaced(old)

    def copy(self) -> list[ExecutionRecord]:
        """
        Return the records as a new list.
        """
        with self._lock:
            return self._records()

    def sort(
        self, *, key: Callable[[ExecutionRecord], Any] | None = None, reverse: bool = False
    ) -> None:
        """
        Sort the records in place, as ``list.sort`` does (stable).
        """
        with self._lock:
            old = self._before()
            records = self._records()
            records.sort(key=key, reverse=reverse)  # type: ignore[arg-type]  # key=None: as list
            self._replace(records)
            self._replaced(old)

    def __add__(self, other: Iterable[ExecutionRecord]) -> list[ExecutionRecord]:
        if not isinstance(other, (list, tuple, ExecutionHistory)):
            return NotImplemented
        return self.copy() + list(other)

    def __radd__(self, other: Iterable[ExecutionRecord]) -> list[ExecutionRecord]:
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        return list(other) + self.copy()

    def __iter__(self) -> Iterator[ExecutionRecord]:
        # A snapshot: records booked while iterating are not seen, and nothing breaks.
        return iter(self.copy())

    def __reversed__(self) -> Iterator[ExecutionRecord]:
        return reversed(self.copy())

    def __contains__(self, value: object) -> bool:
        return value in self.copy()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ExecutionHistory):
            return self.copy() == other.copy()
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return self.copy() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return repr(self.copy())


def book(history: ExecutionHistory, item: Booking) -> None:
    """
    Append one booking to ``history`` (a full bounded history drops its oldest, counted
    in ``dropped``), with the history's lock held; the caller tells the listener.
    """
    items = history._items
    if history.maxlen is not None and len(items) >= history.maxlen:
        history.dropped += 1
    items.append(item)


def set_owner(history: ExecutionHistory, owner: HistoryOwner | None) -> None:
    """
    Report the public changes of ``history`` to ``owner`` from now on (``None``: to
    nobody), with the history's lock held.
    """
    history._owner = owner


def emitted_since(history: ExecutionHistory, position: int) -> tuple[list[Emitted], int]:
    """
    Return the events emitted in the job whose history this is, booked at ``position`` or
    later, oldest first, and the position after its last record; with the history's lock
    held. A position counts every record the history ever held: the ones its bound
    dropped (``dropped``) come first.
    """
    items = history._items
    first = history.dropped
    emitted: list[Emitted] = []
    append = emitted.append
    for item in islice(items, max(0, position - first), None):
        if item.__class__ is tuple:
            if len(item) == 5:
                rid, name, data, when, target = item
                append((when, rid, name, target, data))
        elif item.__class__ is EmitRecord:
            append(
                (
                    item.timestamp,
                    item.routine_id,
                    item.event_name,
                    item.target_routine_id,
                    item.data,
                )
            )
    return emitted, first + len(items)

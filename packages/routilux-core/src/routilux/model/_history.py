"""
A job's execution history: the list-like :class:`ExecutionHistory` of
:class:`~routilux.model._records.ExecutionRecord`.

The functions :func:`book`, :func:`set_owner`, :func:`pack` and :func:`emitted_since` are
the interface of the JobState and its ExecutionTracker to a history.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableSequence, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, overload

from routilux.model._records import (
    NOT_EMITTED,
    EmitRecord,
    ExecutionRecord,
    Given,
    PackedEntries,
    as_record,
    pack_entries,
    target_of,
    unpack_entries,
)


if TYPE_CHECKING:
    from routilux.model._records import Booking, Emitted


__all__ = [
    "EmitRecord",
    "ExecutionHistory",
    "ExecutionRecord",
    "HistoryOwner",
    "book",
    "emitted_since",
    "pack",
    "set_owner",
]


class HistoryOwner(Protocol):
    """
    What hears of a history's public changes (the JobState it belongs to).
    """

    def history_changed(self, old: Any, new: Any, routine_id: str | None) -> None:
        """
        Hear of one change, with the history's lock held: an append as ``old`` None and
        ``new`` the record, anything else as the records before and after.
        """


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

    The scheduler books records as compact tuples
    (:data:`~routilux.model._records.Booking`, appended by :func:`book` with the job's
    lock held); each becomes its :class:`ExecutionRecord` the first time it is read, and
    that object is kept, so reading the same index twice gives the same object. A
    finished job keeps its entries packed (:func:`pack`) until they are read or changed.
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
        the bookings no one has read yet (:func:`~routilux.model._records.as_record`
        turns one into its record). Serializers read these, so that writing a job does
        not make a record per booking. A packed history stays packed: the list holds its
        entries unpacked.

        .. versionadded:: 0.10
        """
        with self._lock:
            items = self._items
            return unpack_entries(items) if items.__class__ is PackedEntries else list(items)

    def _live(self) -> Any:
        # With the lock held: the stored entries, unpacked if the history was packed.
        items = self._items
        if items.__class__ is PackedEntries:
            unpacked = unpack_entries(items)
            maxlen = self.maxlen
            items = self._items = unpacked if maxlen is None else deque(unpacked, maxlen)
        return items

    def _record_at(self, index: int) -> ExecutionRecord:
        # With the lock held.
        items = self._live()
        item = items[index]
        if item.__class__ is tuple:
            item = items[index] = as_record(item)
        return item  # type: ignore[no-any-return]

    def _records(self) -> list[ExecutionRecord]:
        # With the lock held: turn every booking into its record; return them all.
        items = self._live()
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
            over = len(self._live()) + count - maxlen
            if over > 0:
                self.dropped += over

    # -- the list interface -----------------------------------------------------------

    def __len__(self) -> int:
        items = self._items
        return items[0] if items.__class__ is PackedEntries else len(items)

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
                self._live()[index] = _require_record(value)
            self._replaced(old)

    def __delitem__(self, index: int | slice) -> None:
        with self._lock:
            old = self._before()
            if isinstance(index, slice):
                items = list(self._live())
                del items[index]
                self._replace(items)
            else:
                del self._live()[index]
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
            self._live().insert(index, record)
            self._replaced(old)

    def append(self, value: ExecutionRecord) -> None:
        """
        Append a record (a full bounded history drops its oldest, counted in :attr:`dropped`).
        """
        record = _require_record(value)
        with self._lock:
            self._make_room(1)
            self._live().append(record)
            self._appended([record])

    def extend(self, values: Iterable[ExecutionRecord]) -> None:
        """
        Append records in order.
        """
        records = [_require_record(v) for v in values]
        with self._lock:
            self._make_room(len(records))
            self._live().extend(records)
            self._appended(records)

    def pop(self, index: int = -1) -> ExecutionRecord:
        """
        Remove and return the record at ``index`` (the last by default).
        """
        with self._lock:
            old = self._before()
            record = self._record_at(index)
            del self._live()[index]
            self._replaced(old)
            return record

    def reverse(self) -> None:
        """
        Reverse the records in place.
        """
        with self._lock:
            old = self._before()
            self._live().reverse()
            self._replaced(old)

    def clear(self) -> None:
        """
        Remove every record.
        """
        with self._lock:
            if not self._live():
                return
            old = self._before()
            self._live().clear()
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
    if items.__class__ is PackedEntries:  # a finished job runs again, or is written to
        items = history._live()
    if history.maxlen is not None and len(items) >= history.maxlen:
        history.dropped += 1
    items.append(item)


def pack(history: ExecutionHistory) -> None:
    """
    Keep the entries of ``history`` (a finished job's) packed in one tuple until they are
    read or changed (see :class:`~routilux.model._records.PackedEntries`), with the
    history's lock held.
    """
    items = history._items
    if items and items.__class__ is not PackedEntries:
        history._items = pack_entries(items)


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
    items = history._live()
    first = history.dropped
    emitted: list[Emitted] = []
    append = emitted.append
    given: list[int] = []
    start = max(0, position - first)
    for index, item in enumerate(islice(items, start, None), start):
        if item.__class__ is tuple:
            if len(item) == 5 and item[4] is not NOT_EMITTED:
                rid, name, data, when, target = item
                append((when, rid, name, target_of(target), data))
                if target.__class__ is not Given:
                    given.append(index)
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
    for index in given:  # the tracker's records hold their data now: never packed flat
        rid, name, data, when, target = items[index]
        items[index] = (rid, name, data, when, Given(target))
    return emitted, first + len(items)

"""
A history's entries: :class:`ExecutionRecord` and :class:`EmitRecord`, the compact
bookings the scheduler makes of them, and the packed form a finished job keeps them in.

A booking whose data the job alone holds (the engine's own records, and the events
emitted with no plugin or merge function to see them) is packed flat: its data dict
becomes its keys and values in the job's one tuple, and a new dict when it is read.
Anything else is kept as it is, so a dict or record anyone was given stays the job's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import attrs


__all__ = [
    "NOT_EMITTED",
    "Booking",
    "EmitRecord",
    "Emitted",
    "ExecutionRecord",
    "Given",
    "PackedEntries",
    "as_record",
    "pack_entries",
    "target_of",
    "unpack_entries",
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


class _Marker:
    """A named sentinel of the booked and packed forms."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        # Copied or pickled, a marker stays the module's own (it is compared by identity).
        return self.name


NOT_EMITTED: Final = _Marker("NOT_EMITTED")
"""The target of a booking that is no emitted event (one of the engine's own records)."""

_KEEP: Final = _Marker("_KEEP")
"""In packed entries: the next item is an entry kept as it was stored."""


class Given:
    """
    The target of an emitted event's booking whose data others were given too (the
    plugins that heard of the event, or a slot's merge function): it is never packed
    flat. The engine makes one per route, not per event.
    """

    __slots__ = ("routine_id",)

    def __init__(self, routine_id: str | None) -> None:
        #: The flow routine id of the first routine the event was delivered to, or ``None``.
        self.routine_id = routine_id


Booking = (
    tuple[str, str, dict[str, Any], "float | datetime"]
    | tuple[str, str, dict[str, Any], float, "str | Given | _Marker | None"]
)
"""A record as the scheduler books it: routine id, event name, data, and the time as an
epoch float (booked live) or a datetime (loaded from a document). The engine's bookings
add a target: the first routine an emitted event was delivered to (it becomes an
:class:`EmitRecord`; :class:`Given` when others hold its data), or :data:`NOT_EMITTED`.
A booking of four holds data its caller gave; one of five, data only the job holds
(unless its target is :class:`Given`)."""

Emitted = tuple["float | datetime", str, str, "str | None", dict[str, Any]]
"""An emitted event as :func:`~routilux.model._history.emitted_since` returns it: time,
source routine id, event name, target routine id, data."""

_fromtimestamp = datetime.fromtimestamp


def target_of(booked: Any) -> str | None:
    """
    Return the target routine id a booking's fifth field stands for (a :class:`Given`'s).
    """
    return booked.routine_id if booked.__class__ is Given else booked


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
    if target is NOT_EMITTED:
        return ExecutionRecord(rid, name, data, _fromtimestamp(stamp))
    return EmitRecord(rid, name, data, _fromtimestamp(stamp), target_of(target))


class PackedEntries(tuple):  # type: ignore[type-arg]  # one flat tuple of every entry
    """
    A finished job's history entries, packed in one tuple: their count, then per entry
    either the number of keys of its data (``~`` of it for a record that is no emitted
    event), its routine id, event name, time and target (an emitted event's only), and its
    data's keys and values in turn (a booking whose data only the job holds), or ``_KEEP``
    and the entry as it was stored.
    """

    __slots__ = ()


def pack_entries(items: Any) -> PackedEntries:
    """
    Return the stored entries ``items`` (records and bookings, oldest first) packed.
    """
    flat: list[Any] = [len(items)]
    extend = flat.extend
    for item in items:
        if item.__class__ is tuple and len(item) == 5:
            rid, name, data, when, target = item
            if data.__class__ is dict and target.__class__ is not Given:
                if target is NOT_EMITTED:
                    extend((~len(data), rid, name, when))
                else:
                    extend((len(data), rid, name, when, target))
                for pair in data.items():  # faster than a chain for a few keys
                    extend(pair)
                continue
        extend((_KEEP, item))
    return PackedEntries(flat)


def unpack_entries(packed: PackedEntries) -> list[Any]:
    """
    Return the entries of ``packed`` as they were stored (each packed data dict a new
    dict, equal to the one packed).
    """
    items: list[Any] = []
    append = items.append
    i, end = 1, len(packed)
    while i < end:
        count = packed[i]
        if count is _KEEP:
            append(packed[i + 1])
            i += 2
            continue
        if count < 0:
            target, first = NOT_EMITTED, i + 4
            count = ~count
        else:
            target, first = packed[i + 4], i + 5
        stop = first + 2 * count
        data = dict(zip(packed[first:stop:2], packed[first + 1 : stop : 2], strict=True))
        append((packed[i + 1], packed[i + 2], data, packed[i + 3], target))
        i = stop
    return items

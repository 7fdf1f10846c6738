"""
ExecutionTracker: per-job timings of routine activations and the events they emitted.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

from routilux.model._history import emitted_since


if TYPE_CHECKING:
    from routilux.model._history import ExecutionHistory


__all__ = ["ExecutionTracker", "PackedTracker", "mark_given", "pack_tracker", "unpack_tracker"]


_FROZEN_SIZE = 4
"""Fields of one activation's booking when frozen: routine, start, end, and its status
(``(status, error)`` when it has an error message)."""


def _bounded(limit: int | None) -> Any:
    return deque(maxlen=limit) if limit else []


class ExecutionTracker:
    """
    Records, for one job, each routine activation's start, end, status and duration, and
    each emitted event; and summarises them.

    The scheduler books activations as compact tuples (:meth:`record_activation`); the
    dict records of :attr:`routine_executions` are built when they are read. A job's
    tracker books no event of its own: its :attr:`event_flow` is a view of the events
    the job's history records from the tracker's start on (each emit is booked once, in
    the history), made into dict records when it is read; it keeps the events it read,
    as well as those given to :meth:`record_event` or assigned.

    Args:
        flow_id: The flow of the job.
        limit: Keep at most this many records per list (the most recent), or ``None``.
        history: The job history whose emitted events the tracker shows, from its end
            on (the engine gives the job's; see :meth:`follow`).
        lock: The lock that guards ``history`` (the job's); the tracker takes it too. A
            tracker of its own by default.
    """

    __slots__ = (
        "_entry",
        "_events",
        "_executions",
        "_given",
        "_history",
        "_limit",
        "_lock",
        "_metrics",
        "_new_activations",
        "_seen",
        "flow_id",
    )

    def __init__(
        self,
        flow_id: str = "",
        limit: int | None = None,
        *,
        history: ExecutionHistory | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        #: The flow of the job.
        self.flow_id = flow_id
        self._limit = limit
        # Guards the records; only reads and the public record methods take it (the
        # scheduler books lock-free).
        self._lock: threading.RLock = lock if lock is not None else threading.RLock()
        # Made on first use: most trackers are never read.
        self._metrics: dict[str, Any] | None = None
        self._executions: Any = None
        self._events: Any = None
        # Compact bookings not yet turned into dicts: (routine, start, end, status, error).
        # A deque: its appends are thread-safe by documentation, so the scheduler books
        # without taking the tracker's lock. After the job finishes it becomes one tuple
        # (see freeze), hence Any.
        self._new_activations: Any = deque(maxlen=limit)
        # The history viewed, and the position (see emitted_since) up to which its events
        # are in _events.
        self._history = history
        self._seen = 0
        if history is not None:
            with self._lock:
                self._seen = history.dropped + len(history)
        # The entry routine, its parameters (for the params of its first record), and
        # whether the job alone holds them (see set_entry).
        self._entry: tuple[str, dict[str, Any], bool] | None = None
        # Someone other than the engine was given the tracker: it is never packed.
        self._given = False

    def __repr__(self) -> str:
        return f"ExecutionTracker[{self.flow_id}]"

    @property
    def lock(self) -> threading.RLock:
        """
        The tracker's lock (a job's tracker shares the job's): hold it to read the records
        as one consistent snapshot, as serializing does.

        .. versionadded:: 0.10
        """
        return self._lock

    @property
    def limit(self) -> int | None:
        """
        The most records kept per list (the most recent), or ``None`` for all.

        .. versionadded:: 0.10
        """
        return self._limit

    @property
    def performance_metrics(self) -> dict[str, Any]:
        """
        Reserved for summary metrics (kept empty, as in the original).
        """
        with self._lock:
            if self._metrics is None:
                self._metrics = {}
            return self._metrics

    @performance_metrics.setter
    def performance_metrics(self, value: dict[str, Any]) -> None:
        with self._lock:
            self._metrics = value

    # -- the engine's interface -------------------------------------------------------

    def record_activation(
        self, routine_id: str, start: float, end: float, status: str, error: str | None
    ) -> None:
        """
        Book one finished activation of ``routine_id`` (epoch seconds; its final status,
        and its error message if it failed), without taking the lock. Engine interface.
        """
        self._new_activations.append((routine_id, start, end, status, error))

    def set_entry(self, routine_id: str, params: dict[str, Any], *, own: bool = False) -> None:
        """
        Name the job's entry routine and its parameters: its first activation record
        carries a copy of them (as :meth:`record_routine_start` would). ``own``: no one but
        the job holds ``params``, so a frozen tracker keeps them flat. Engine interface.
        """
        with self._lock:
            self._entry = (routine_id, params, own)

    def follow(self, history: ExecutionHistory) -> None:
        """
        Show the events of ``history`` from its end on (the job's history was replaced),
        keeping those of the history followed so far. A tracker that follows no history
        does not start to. Engine interface.
        """
        if self._history is None:
            return
        with self._lock:
            self._materialize()
            self._history = history
            self._seen = history.dropped + len(history)

    def freeze(self) -> None:
        """
        Keep the pending bookings of a finished job flattened into one tuple (a deque
        reserves a block of 64 slots, and a tuple per booking costs its header; see
        ``_FROZEN_SIZE``), after the entry routine and the keys and values of its
        parameters when the job alone holds them, until the job runs again (:meth:`thaw`)
        or the records are read. Engine interface.
        """
        with self._lock:
            head: tuple[Any, ...] = ()
            entry = self._entry
            if entry is not None and entry[2]:
                head = (entry[0], *chain.from_iterable(entry[1].items()))
                self._entry = None
            booked = [
                (rid, start, end, status if error is None else (status, error))
                for rid, start, end, status, error in self._new_activations
            ]
            self._new_activations = (len(head), *head, *chain.from_iterable(booked))

    def thaw(self) -> None:
        """
        Book into a deque again: the job runs again. Engine interface.
        """
        with self._lock:
            self._new_activations = self._unfrozen()

    # -- records ----------------------------------------------------------------------

    def _unfrozen(self) -> deque[tuple[Any, ...]]:
        # With the lock held: the pending bookings as a deque of tuples again (and the
        # entry's parameters as a dict, when the tracker was frozen with them).
        booked = self._new_activations
        if not isinstance(booked, tuple):
            return booked  # type: ignore[no-any-return]  # a deque
        size = booked[0] if booked else 0
        if size:
            params = dict(zip(booked[2 : size + 1 : 2], booked[3 : size + 1 : 2], strict=True))
            self._entry = (booked[1], params, True)
        rest = iter(booked[size + 1 :])
        thawed = (
            (rid, start, end, *(status if status.__class__ is tuple else (status, None)))
            for rid, start, end, status in zip(*[rest] * _FROZEN_SIZE, strict=True)
        )
        return deque(thawed, maxlen=self._limit)

    def _materialize(self) -> None:
        # With the lock held: turn compact bookings, and the events the history booked
        # since the last look, into dict records. A finished job's flattened bookings are
        # replaced by an empty tuple (not a deque, which reserves space).
        frozen = isinstance(self._new_activations, tuple)
        self._convert(self._unfrozen())
        if frozen:
            self._new_activations = ()
        if self._events is None:
            self._events = _bounded(self._limit)
        history = self._history
        if history is not None:
            emitted, self._seen = emitted_since(history, self._seen)
            for when, source, event, target, data in emitted:
                stamp = when if isinstance(when, datetime) else datetime.fromtimestamp(when)
                self._events.append(
                    {
                        "timestamp": stamp.isoformat(),
                        "source_routine_id": source,
                        "event_name": event,
                        "target_routine_id": target,
                        "data": data or {},
                    }
                )

    def _convert(self, activations: deque[tuple[Any, ...]]) -> None:
        if self._executions is None:
            self._executions = {}
        while activations:
            rid, start, end, status, error = activations.popleft()
            params: dict[str, Any] = {}
            if self._entry is not None and self._entry[0] == rid:
                params = dict(self._entry[1])
                self._entry = None
            entry: dict[str, Any] = {
                "routine_id": rid,
                "start_time": datetime.fromtimestamp(start).isoformat(),
                "end_time": datetime.fromtimestamp(end).isoformat(),
                "params": params,
                "status": status,
                "execution_time": end - start,
            }
            if error is not None:
                entry["error"] = error
            self._list_for(rid).append(entry)

    def _list_for(self, routine_id: str) -> Any:
        # With the lock held and the records materialized.
        records = self._executions.get(routine_id)
        if records is None:
            records = self._executions[routine_id] = _bounded(self._limit)
        return records

    @property
    def routine_executions(self) -> dict[str, list[dict[str, Any]]]:
        """
        Activation records by flow routine id, oldest first.
        """
        with self._lock:
            self._materialize()
            executions: dict[str, list[dict[str, Any]]] = self._executions
            return executions

    @routine_executions.setter
    def routine_executions(self, value: dict[str, list[dict[str, Any]]]) -> None:
        with self._lock:
            self._unfrozen()  # a frozen tracker's entry parameters are kept
            self._new_activations = deque(maxlen=self._limit)
            self._executions = value

    @property
    def event_flow(self) -> list[dict[str, Any]]:
        """
        Emitted events, oldest first.
        """
        with self._lock:
            self._materialize()
            return self._events  # type: ignore[no-any-return]  # a list or bounded deque

    @event_flow.setter
    def event_flow(self, value: list[dict[str, Any]]) -> None:
        with self._lock:
            history = self._history
            if history is not None:  # the events booked so far are replaced too
                self._seen = history.dropped + len(history)
            self._events = value

    def record_routine_start(self, routine_id: str, params: dict[str, Any] | None = None) -> None:
        """
        Record that an activation of ``routine_id`` started.
        """
        entry = {
            "routine_id": routine_id,
            "start_time": datetime.now().isoformat(),
            "params": params or {},
            "status": "running",
        }
        with self._lock:
            self._materialize()
            self._list_for(routine_id).append(entry)

    def record_routine_end(
        self,
        routine_id: str,
        status: str = "completed",
        result: Any = None,
        error: str | None = None,
    ) -> None:
        """
        Complete the last start record of ``routine_id`` (nothing happens without one).
        """
        end = datetime.now()
        with self._lock:
            self._materialize()
            records = self._executions.get(routine_id)
            if not records:
                return
            entry = records[-1]
            entry["end_time"] = end.isoformat()
            entry["status"] = status
            if result is not None:
                entry["result"] = result
            if error is not None:
                entry["error"] = error
            start = datetime.fromisoformat(entry["start_time"])
            entry["execution_time"] = (end - start).total_seconds()

    def record_event(
        self,
        source_routine_id: str,
        event_name: str,
        target_routine_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """
        Record an emitted event.
        """
        entry = {
            "timestamp": datetime.now().isoformat(),
            "source_routine_id": source_routine_id,
            "event_name": event_name,
            "target_routine_id": target_routine_id,
            "data": data or {},
        }
        with self._lock:
            self._materialize()
            self._events.append(entry)

    def get_routine_performance(self, routine_id: str) -> dict[str, Any] | None:
        """
        Summarise the activations of ``routine_id``: counts, success rate and execution
        times; ``None`` when it has none.
        """
        with self._lock:
            self._materialize()
            records = list(self._executions.get(routine_id) or ())
        if not records:
            return None
        total = len(records)
        completed = sum(1 for r in records if r.get("status") == "completed")
        failed = sum(1 for r in records if r.get("status") == "failed")
        times = [r["execution_time"] for r in records if "execution_time" in r]
        return {
            "total_executions": total,
            "completed": completed,
            "failed": failed,
            "success_rate": completed / total,
            "avg_execution_time": sum(times) / len(times) if times else 0,
            "min_execution_time": min(times) if times else 0,
            "max_execution_time": max(times) if times else 0,
        }

    def get_flow_performance(self) -> dict[str, Any]:
        """
        Summarise the job: routines seen, events emitted, the sum of the routines' average
        execution times and their mean.
        """
        with self._lock:
            self._materialize()
            routine_ids = list(self._executions)
            total_events = len(self._events)
        averages = []
        for rid in routine_ids:
            perf = self.get_routine_performance(rid)
            if perf and perf["avg_execution_time"] > 0:
                averages.append(perf["avg_execution_time"])
        total = sum(averages)
        return {
            "total_routines": len(routine_ids),
            "total_events": total_events,
            "total_execution_time": total,
            "avg_routine_time": total / len(averages) if averages else 0,
        }

    def serialize(self) -> dict[str, Any]:
        """
        Return the tracker as a ``routilux.execution_tracker`` document (plain JSON-able
        data; see :func:`routilux.serialization.dump_tracker`).

        Raises:
            SerializationError: A record holds data that is not JSON; the message gives its path.
        """
        from routilux.codec._tracker import dump_tracker

        return dump_tracker(self)

    def deserialize(self, data: dict[str, Any]) -> None:
        """
        Restore the tracker from :meth:`serialize` output (or the older
        ``{"_type": "ExecutionTracker", ...}`` shape); ``data`` is not changed.

        Raises:
            DeserializationError: ``data`` is malformed.
        """
        from routilux.codec._tracker import load_tracker_into

        load_tracker_into(self, data)


class PackedTracker(tuple):  # type: ignore[type-arg]  # one flat tuple of the tracker
    """
    A finished job's tracker that no one was given, packed in one tuple: its flow id,
    limit and position in the job's history (see ``emitted_since``), then its frozen
    bookings (see :meth:`ExecutionTracker.freeze`).
    """

    __slots__ = ()


def mark_given(tracker: ExecutionTracker) -> None:
    """
    Note that code other than the engine was given ``tracker``, with its lock held: it
    stays the job's tracker for good (never packed).
    """
    tracker._given = True


def pack_tracker(
    tracker: ExecutionTracker, history: ExecutionHistory, lock: threading.RLock
) -> PackedTracker | None:
    """
    With ``lock`` held: ``tracker`` (a finished job's, frozen, viewing its ``history``
    under its ``lock``) packed, or ``None`` when it is to stay as it is: someone was given
    it, its records were read, it keeps entry parameters that others hold, or it views
    another history or lock.
    """
    if (
        tracker._given
        or tracker._history is not history
        or tracker._lock is not lock
        or tracker._entry is not None
        or tracker._metrics is not None
        or tracker._executions is not None
        or tracker._events is not None
        or not isinstance(tracker._new_activations, tuple)
    ):
        return None
    return PackedTracker(
        (tracker.flow_id, tracker._limit, tracker._seen, *tracker._new_activations)
    )


def unpack_tracker(
    packed: PackedTracker, history: ExecutionHistory, lock: threading.RLock
) -> ExecutionTracker:
    """
    Return the tracker ``packed`` holds, viewing ``history`` under ``lock`` (the job's),
    frozen as it was packed.
    """
    tracker = ExecutionTracker(packed[0], packed[1], lock=lock)
    tracker._history = history
    tracker._seen = packed[2]
    tracker._new_activations = packed[3:]
    return tracker

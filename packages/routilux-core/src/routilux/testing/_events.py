"""
:class:`RecordedEvents`: every stream event of the jobs a test runs (the ``routilux_events``
fixture), with filters and a bounded wait.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any

from routilux.engine._stream import EventTap
from routilux.model._stream_event import StreamEvent
from routilux.plugins._hookspecs import hookimpl
from routilux.plugins._manager import PluginManager, default_plugin_manager


__all__ = ["RecordedEvents"]


def _hook(method: Callable[..., None]) -> Callable[..., None]:
    # The tap's method as a hook implementation of a registered plugin (the same signature,
    # so the plugin manager passes it the arguments it names).
    @functools.wraps(method)
    def call(self: EventTap, *args: Any) -> None:
        method(self, *args)

    return hookimpl(call)


class _RecordingTap(EventTap):
    # The stream's tap, registered as a plugin of every job instead of one job's listener.
    routilux_job_started = _hook(EventTap.routilux_job_started)
    routilux_activation_started = _hook(EventTap.routilux_activation_started)
    routilux_event_emitted = _hook(EventTap.routilux_event_emitted)
    routilux_output_sent = _hook(EventTap.routilux_output_sent)
    routilux_activation_failed = _hook(EventTap.routilux_activation_failed)
    routilux_job_status_changed = _hook(EventTap.routilux_job_status_changed)
    routilux_job_finished = _hook(EventTap.routilux_job_finished)


class RecordedEvents:
    """
    The :class:`~routilux.StreamEvent` objects of every job started while recording, in
    the order each job booked them (the events of different jobs interleave as they
    happened). What ``routilux_events`` gives a test.

    It records the jobs of flows that use the process-wide plugin manager (every flow not
    given ``plugins=``); jobs started before recording began are not seen.

    Args:
        manager: The plugin manager to record the jobs of (the process-wide one by
            default).

    Example::

        def test_approval(routilux_flow, routilux_events):
            flow = routilux_flow(document="approval.json")
            job = flow.execute("ask", {"amount": 40})
            assert routilux_events.kinds(job.job_id)[-1] == "paused"
            (asked,) = routilux_events.filter("emitted", routine_id="ask")
    """

    def __init__(self, manager: PluginManager | None = None) -> None:
        self._manager = manager if manager is not None else default_plugin_manager()
        self._cond = threading.Condition(threading.Lock())
        self._events: list[StreamEvent] = []
        self._tap: _RecordingTap | None = None

    # -- recording ---------------------------------------------------------------------

    def start(self) -> None:
        """
        Begin recording the jobs started from now on.
        """
        with self._cond:
            if self._tap is not None:
                return
            self._tap = _RecordingTap(self._record)
        self._manager.register(self._tap, f"routilux_events-{id(self)}")

    def stop(self) -> None:
        """
        Stop recording (jobs already started keep their hooks until they finish, and what
        they still book is recorded).
        """
        with self._cond:
            tap, self._tap = self._tap, None
        if tap is not None:
            self._manager.unregister(tap)

    def _record(self, event: StreamEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    def __iter__(self) -> Iterator[StreamEvent]:
        with self._cond:
            return iter(list(self._events))

    def __getitem__(self, index: int) -> StreamEvent:
        with self._cond:
            return self._events[index]

    def filter(
        self,
        kind: str | Collection[str] | None = None,
        *,
        job_id: str | None = None,
        routine_id: str | None = None,
        **data: Any,
    ) -> list[StreamEvent]:
        """
        Return the events that match every criterion given, in order.

        Args:
            kind: An event kind (``"emitted"``...) or a collection of kinds.
            job_id: Only this job's events.
            routine_id: Only the events about this routine.
            **data: Items the event's ``data`` must hold; for ``emitted`` and ``output``
                events the payload's items count too (``filter("emitted", event="out",
                x=1)``).
        """
        with self._cond:
            return _matching(self._events, kind, job_id, routine_id, data)

    def kinds(self, job_id: str | None = None) -> list[str]:
        """
        Return the kinds of the events (of one job), in order.
        """
        return [e.kind for e in self.filter(job_id=job_id)]

    def clear(self) -> None:
        """
        Forget the events recorded so far (recording goes on).
        """
        with self._cond:
            self._events.clear()

    def wait_for(
        self,
        kind: str | Collection[str] | None = None,
        *,
        timeout: float = 10.0,
        job_id: str | None = None,
        routine_id: str | None = None,
        **data: Any,
    ) -> StreamEvent:
        """
        Wait until an event matching the criteria of :meth:`filter` is recorded (or was
        already); return the first such event.

        Raises:
            AssertionError: None came within ``timeout`` seconds; the message says what
                was awaited and lists the events recorded.
        """
        hits: list[StreamEvent] = []

        def found() -> bool:
            hits[:] = _matching(self._events, kind, job_id, routine_id, data)
            return bool(hits)

        with self._cond:
            if self._cond.wait_for(found, timeout):
                return hits[0]
        wanted = ", ".join(
            f"{name}={value!r}"
            for name, value in (("kind", kind), ("job_id", job_id), ("routine_id", routine_id))
            if value is not None
        )
        wanted += "".join(f", {k}={v!r}" for k, v in data.items())
        msg = f"no event with {wanted or 'any criteria'} within {timeout:g} s; recorded:\n"
        raise AssertionError(msg + self.describe())

    def describe(self, job_id: str | None = None) -> str:
        """
        Return the events (of one job), one line each, for a failure message.
        """
        lines = [f"  {e.job_id[:8]} {e}" for e in self.filter(job_id=job_id)]
        return "\n".join(lines) if lines else "  (none)"


def _matching(
    events: list[StreamEvent],
    kind: str | Collection[str] | None,
    job_id: str | None,
    routine_id: str | None,
    data: dict[str, Any],
) -> list[StreamEvent]:
    kinds = {kind} if isinstance(kind, str) else None if kind is None else set(kind)
    return [
        e
        for e in events
        if (kinds is None or e.kind in kinds)
        and (job_id is None or e.job_id == job_id)
        and (routine_id is None or e.routine_id == routine_id)
        and _holds(e, data)
    ]


def _holds(event: StreamEvent, data: dict[str, Any]) -> bool:
    # Whether the event's data (or, for emitted and output events, its payload) holds
    # every item of ``data``.
    if not data:
        return True
    payload = event.data.get("data")
    inner = payload if isinstance(payload, dict) else {}
    missing = object()
    for key, value in data.items():
        got = event.data.get(key, missing)
        if got is missing:
            got = inner.get(key, missing)
        if got is missing or got != value:
            return False
    return True

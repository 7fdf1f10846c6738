"""
``routilux run --follow`` and ``resume --follow``: a job's events printed live, one line each.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

from routilux.engine._stream import EventBuffer, EventStream


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.model._job_state import JobState
    from routilux.model._stream_event import StreamEvent

__all__ = ["Follower", "Tally"]


class Tally:
    """
    The progress of a job as its events tell it: activations started, and activations
    known to be queued so far (the entry or the pending ones, one per connected slot of
    each emitted event, one per scheduled retry).
    """

    def __init__(self, flow: Flow, known: int) -> None:
        self.flow = flow
        self.started = 0
        self.known = known

    def add(self, event: StreamEvent) -> None:
        """
        Count ``event``.
        """
        if event.kind == "activation_started":
            self.started += 1
        elif event.kind == "retry_scheduled":
            self.known += 1
        elif event.kind == "emitted" and event.routine_id is not None:
            routine = self.flow.routines.get(event.routine_id)
            emitted = routine.get_event(event.data["event"]) if routine is not None else None
            if emitted is not None:
                self.known += len(self.flow.targets_of(emitted))
        self.known = max(self.known, self.started)

    def line(self) -> str:
        """
        ``[started/known]``.
        """
        return f"[{self.started}/{self.known}]"


class Follower:
    """
    Prints the events of the job it is attached to on ``out``, each prefixed with the
    :class:`Tally` progress, from a thread of its own through a stream buffer (so a slow
    terminal holds the job back instead of filling memory). Use it as the ``on_event`` of
    ``run_job``, attached in its ``prepare``.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._buffer: EventBuffer | None = None
        self._thread: threading.Thread | None = None

    def attach(self, flow: Flow, job_state: JobState) -> None:
        """
        Start printing the events of ``job_state`` (loaded, not yet running).
        """
        queued = len(job_state.pending_tasks) + len(job_state.failed_tasks)
        tally = Tally(flow, queued if job_state.status != "pending" else 1)
        self._buffer = buffer = EventBuffer(job_state)
        stream = EventStream(job_state, buffer)
        self._thread = threading.Thread(
            target=self._print, args=(stream, tally), name="routilux-follow", daemon=True
        )
        self._thread.start()

    def __call__(self, event: StreamEvent) -> None:
        if self._buffer is not None:
            self._buffer(event)

    def _print(self, stream: EventStream, tally: Tally) -> None:
        for event in stream:
            tally.add(event)
            self._out.write(f"{tally.line()} {event}\n")
            self._out.flush()

    def close(self) -> None:
        """
        Wait for the lines of the events the job made (it is at rest), then stop.
        """
        thread, buffer = self._thread, self._buffer
        if thread is not None and buffer is not None:
            thread.join(5.0)
            buffer.close()

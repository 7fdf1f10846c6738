"""
The job a piece of code runs for: a context variable set around every activation.

A context variable (not a thread-local) is what lets worker threads, the caller's thread
and event-loop tasks all find their job, and lets copied contexts carry it along.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Protocol

import attrs


if TYPE_CHECKING:
    import asyncio

    from routilux.model._connection import Connection
    from routilux.model._definition import FlowDefinition
    from routilux.model._event import Event
    from routilux.model._job_state import JobState
    from routilux.model._slot import Slot

__all__ = [
    "ActivationView",
    "ActiveRun",
    "Frame",
    "RunState",
    "current_frame",
    "record_standalone_error",
]


class ActivationView(Protocol):
    """
    One activation, as the model sees it (the engine's ``Activation``).
    """

    @property
    def seq(self) -> int:
        """The job-wide sequence number (for idempotency keys)."""

    @property
    def routine_id(self) -> str | None:
        """The flow routine id of the routine the activation is delivered to."""

    @property
    def connection(self) -> Connection | None:
        """The connection it came through, if any."""

    @property
    def watch(self) -> Any:
        """The engine's watch of its timeout while it runs with one, else ``None``."""


class ActiveRun(Protocol):
    """
    The run of a job, as the model sees it: what a routine's handler reaches through its
    frame (the engine's ``JobRun`` implements it).
    """

    @property
    def flow(self) -> FlowDefinition:
        """The flow the job belongs to."""

    @property
    def job_state(self) -> JobState:
        """The job's state."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop of the job's coroutine activations, or ``None`` (the background loop)."""

    def emit_event(self, event: Event, payload: dict[str, Any], frame: Frame) -> None:
        """Record an emitted event and queue its activations in the job (``frame``: the
        emitting code's frame, whose run this is)."""


class RunState(Protocol):
    """
    What a JobState asks of the run that holds it (a live run or what a finished one left).
    """

    @property
    def finished(self) -> bool:
        """The run finished its work (or was cancelled)."""

    @property
    def abandoned(self) -> bool:
        """The run stopped on this process because its store refused a checkpoint."""

    @property
    def in_flight(self) -> int:
        """Activations taken from the queue and not finished yet."""

    def is_settled(self) -> bool:
        """Finished, cancelled, or paused with nothing running, its checkpoints written."""

    def written_states(self) -> dict[str, tuple[dict[str, Any], float | str, float]] | None:
        """
        Per routine whose state the run wrote: the dict it wrote last, the start it says
        (the epoch time it was formatted from, or its text) and its end (epoch); ``None``
        when the run keeps no such record.
        """


@attrs.define(eq=False)
class Frame:
    """
    What is running now: the job run, and the activation (``None`` outside handlers, for
    example while ``resume`` emits deferred events).
    """

    run: ActiveRun
    activation: ActivationView | None
    #: The thread ident of the job's scheduler runner (a worker or the draining caller)
    #: that runs this frame's handler and picks up one queued activation itself when the
    #: handler returns; ``None`` off runners. A thread the handler starts in a copy of its
    #: context has the same frame but is no runner: it compares its own ident.
    runner: int | None = None


_CURRENT: contextvars.ContextVar[Frame | None] = contextvars.ContextVar(
    "routilux_current_frame", default=None
)

current_frame = _CURRENT.get
set_frame = _CURRENT.set
reset_frame = _CURRENT.reset


def record_standalone_error(slot: Slot, exc: BaseException) -> None:
    """
    Log a handler error of a slot used on its own, and record it in the current job when
    the slot's routine belongs to it.
    """
    from routilux._util._log import logger, repr_of, text_of

    routine = slot.routine
    frame = current_frame()
    routine_id: Any = getattr(routine, "_id", None)
    if frame is not None and routine is not None:
        rid = frame.run.flow.routine_id_of(routine)
        if rid is not None:
            routine_id = rid
            frame.run.job_state.record_own(
                rid,
                "error",
                {"slot": slot.name, "error": text_of(exc), "error_type": type(exc).__name__},
            )
    logger.warning(
        "slot_handler_failed",
        routine_id=routine_id,
        slot=slot.name,
        error=repr_of(exc),
        exc_info=exc,
    )

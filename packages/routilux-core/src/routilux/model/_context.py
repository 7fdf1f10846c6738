"""
The job a piece of code runs for: a context variable set around every activation.

A context variable (not a thread-local) is what lets worker threads, the caller's thread
and event-loop tasks all find their job, and lets copied contexts carry it along.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

import attrs


if TYPE_CHECKING:
    from routilux.engine._run import Activation, JobRun
    from routilux.model._slot import Slot

__all__ = ["Frame", "current_frame", "record_standalone_error"]


@attrs.define(eq=False)
class Frame:
    """
    What is running now: the job run, and the activation (``None`` outside handlers, for
    example while ``resume`` emits deferred events).
    """

    run: JobRun
    activation: Activation | None
    #: True when this frame runs on one of the job's scheduler runners (a worker or the
    #: draining caller), which will pick up one queued activation itself when it returns.
    on_runner: bool = False


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
        rid = frame.run.flow._get_routine_id(routine)
        if rid is not None:
            routine_id = rid
            frame.run.job_state.record_execution(
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

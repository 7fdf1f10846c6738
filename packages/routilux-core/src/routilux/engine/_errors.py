"""
The error path of a job's run: where the error strategy decides about a handler's error.

Every handler error, of the sync and the async lane alike, goes through :func:`on_error`.
"""

from __future__ import annotations

import time
import traceback
from datetime import datetime
from typing import TYPE_CHECKING, Any

from routilux._util._clock import iso_of
from routilux._util._log import repr_of, text_of
from routilux.engine._activation import as_failed
from routilux.engine._booking import ended
from routilux.engine._retries import retry_later
from routilux.model._error_handler import ErrorStrategy
from routilux.model._error_record import ErrorRecord


if TYPE_CHECKING:
    from routilux.engine._activation import Activation
    from routilux.engine._run import JobRun

__all__ = ["on_error"]


def on_error(
    run: JobRun, act: Activation, exc: BaseException, t0: float, fatal: bool = False
) -> None:
    """
    Handle the error ``exc`` of activation ``act`` (started at ``t0``): record it (history,
    routine state, ``job_state.errors``, log, hook) and apply the routine's error handler,
    else the flow's, else the default (the entry's error fails the job, a downstream one
    is recorded and the job goes on). A ``fatal`` error (a ``BaseException``) fails the job.
    """
    flow = run.flow
    js = run.job_state
    rid = act.routine_id
    routine = flow.routines.get(rid) if rid is not None else None
    handler = flow.error_handler_for(routine)
    strategy = handler.strategy if handler is not None else None
    message = text_of(exc)
    error_type = type(exc).__name__
    record_id = rid if rid is not None else ""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    js.record_own(
        record_id,
        "error",
        {
            "slot": act.slot.name,
            "error": message,
            "error_type": error_type,
            "attempt": act.attempt + 1,
            "traceback": trace,
        },
    )
    log = run.log.bind(routine_id=rid, slot=act.slot.name)
    applied: str
    error_state = {"error": message, "error_type": error_type}
    failed_state: dict[str, Any] = {**error_state, "error_time": iso_of(time.time())}
    if fatal:
        applied = "stop"
        ended(run, rid, t0, "failed", error_state, message)
    elif strategy is ErrorStrategy.RETRY:
        assert handler is not None
        if handler.is_retryable(exc) and act.attempt < handler.max_retries:
            applied = "retry"
            handler.retry_count = act.attempt + 1
            ended(
                run, rid, t0, "retrying", {**error_state, "retry_count": act.attempt + 1}, message
            )
            retry_later(run, act, handler.retry_delay_for(act.attempt))
        else:
            handler.retry_count = handler.max_retries if handler.is_retryable(exc) else 0
            extra = failed_state
            if act.attempt:
                extra = {**failed_state, "retry_count": act.attempt}
            applied = "stop" if handler.is_critical or act.entry else "continue"
            ended(run, rid, t0, "failed", extra, message)
    elif strategy is ErrorStrategy.STOP:
        applied = "stop"
        ended(run, rid, t0, "failed", failed_state, message)
    elif strategy is ErrorStrategy.CONTINUE:
        applied = "continue"
        js.record_own(record_id, "error_continued", dict(error_state))
        ended(run, rid, t0, "error_continued", error_state, message)
    elif strategy is ErrorStrategy.SKIP:
        applied = "skip"
        ended(run, rid, t0, "skipped", error_state, message)
    else:
        applied = "stop" if act.entry else "continue"
        ended(run, rid, t0, "failed", failed_state, message)
    js.record_error(
        ErrorRecord(
            routine_id=record_id,
            slot=act.slot.name,
            error_type=error_type,
            message=message,
            attempt=act.attempt + 1,
            time=datetime.now(),
            strategy=applied,
            traceback=trace,
        )
    )
    if applied == "stop":
        run.fail(as_failed(act, error_type, message))
        log.error("activation_failed", error=repr_of(exc), strategy=applied, exc_info=exc)
    else:
        log.warning("activation_failed", error=repr_of(exc), strategy=applied)
    if run.hooks is not None:
        run.hooks.call(
            "routilux_activation_failed",
            flow=flow,
            job_state=js,
            routine_id=rid,
            slot_name=act.slot.name,
            error=exc,
            strategy=applied,
        )

"""
OpenTelemetry plugin: a span per job and per activation, counters and a duration histogram.

Needs the ``otel`` extra (``pip install routilux-handlers[otel]``).
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from routilux import hookimpl


if TYPE_CHECKING:
    from routilux import Flow, JobState


__all__ = ["OpenTelemetryPlugin"]

_FINAL = frozenset({"completed", "failed", "cancelled"})


class _OpenActivation(NamedTuple):
    # The span of a running activation, kept in the activation's own context.
    job_id: str
    span: Any
    t0: float
    #: What the context held before (restored when this activation ends).
    outer: _OpenActivation | None


class OpenTelemetryPlugin:
    """
    Traces and measures jobs.

    - A span ``routilux.job`` per job (from start to its final status or pause), with the
      attributes ``routilux.flow_id``, ``routilux.job_id``, ``routilux.entry_routine_id`` and
      ``routilux.status``; its status is ERROR when the job failed.
    - A child span ``routilux.activation`` per slot handler run (sync or ``async def``, also
      when several run at once on one thread or event loop), with ``routilux.flow_id``,
      ``routilux.job_id``, ``routilux.routine_id``, ``routilux.slot`` and ``routilux.attempt``.
      A handler error is recorded on it as an exception event, with ERROR status and the
      ``routilux.error_strategy`` applied.
    - Counters ``routilux.jobs`` (by flow and final status), ``routilux.activations`` (by flow,
      routine and outcome) and a histogram ``routilux.activation.duration`` (seconds, by
      flow and routine).

    Args:
        tracer_provider: Where spans go; the global provider by default.
        meter_provider: Where measurements go; the global provider by default.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self._tracer = trace.get_tracer("routilux_handlers", tracer_provider=tracer_provider)
        meter = metrics.get_meter("routilux_handlers", meter_provider=meter_provider)
        self._jobs = meter.create_counter(
            "routilux.jobs", unit="{job}", description="Jobs that reached a final status"
        )
        self._activations = meter.create_counter(
            "routilux.activations", unit="{activation}", description="Slot handler runs"
        )
        self._duration = meter.create_histogram(
            "routilux.activation.duration", unit="s", description="Slot handler run time"
        )
        self._lock = threading.Lock()
        self._job_spans: dict[str, Any] = {}
        # The open activation span, in a context variable: each activation runs in a context
        # of its own (a fresh copy of its job's context on a worker thread, its own task on
        # an event loop), where its started and finished/failed hooks are both called. A key
        # by thread would mix up the coroutine activations that share one loop thread.
        self._act_span: contextvars.ContextVar[_OpenActivation | None] = contextvars.ContextVar(
            f"routilux_otel_activation_{id(self):x}", default=None
        )

    def __repr__(self) -> str:
        return "OpenTelemetryPlugin()"

    # -- jobs -----------------------------------------------------------------------

    def _open_job(self, flow: Flow, job_state: JobState) -> Any:
        job_id = job_state.job_id
        with self._lock:
            span = self._job_spans.get(job_id)
            if span is None:
                span = self._tracer.start_span(
                    "routilux.job",
                    attributes={
                        "routilux.flow_id": flow.flow_id,
                        "routilux.job_id": job_id,
                        "routilux.entry_routine_id": job_state.current_routine_id or "",
                    },
                )
                self._job_spans[job_id] = span
            return span

    def _close_job(self, flow: Flow, job_id: str, status: str) -> None:
        with self._lock:
            span = self._job_spans.pop(job_id, None)
        if span is None:
            return
        span.set_attribute("routilux.status", status)
        if status == "failed":
            span.set_status(Status(StatusCode.ERROR, "job failed"))
        span.end()
        if status in _FINAL:
            self._jobs.add(1, {"routilux.flow_id": flow.flow_id, "routilux.status": status})

    @hookimpl
    def routilux_job_started(self, flow: Flow, job_state: JobState) -> None:
        """
        Open the job's span.
        """
        self._open_job(flow, job_state)

    @hookimpl
    def routilux_job_status_changed(
        self, flow: Flow, job_state: JobState, old: str, new: str
    ) -> None:
        """
        Open the job's span when it runs (again, after a resume); end it when the job pauses.
        """
        if new == "running":
            self._open_job(flow, job_state)
        elif new == "paused":
            self._close_job(flow, job_state.job_id, new)

    @hookimpl
    def routilux_job_finished(self, flow: Flow, job_state: JobState) -> None:
        """
        End the job's span (after the error that failed it, if any, was recorded on it).
        """
        self._close_job(flow, job_state.job_id, job_state.status)

    # -- activations ----------------------------------------------------------------

    @hookimpl
    def routilux_activation_started(
        self,
        flow: Flow,
        job_state: JobState,
        routine_id: str | None,
        slot_name: str,
        attempt: int,
    ) -> None:
        """
        Open an activation span, child of the job's span.
        """
        with self._lock:
            parent = self._job_spans.get(job_state.job_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self._tracer.start_span(
            "routilux.activation",
            context=context,
            attributes={
                "routilux.flow_id": flow.flow_id,
                "routilux.job_id": job_state.job_id,
                "routilux.routine_id": routine_id or "",
                "routilux.slot": slot_name,
                "routilux.attempt": attempt,
            },
        )
        var = self._act_span
        var.set(_OpenActivation(job_state.job_id, span, time.perf_counter(), var.get()))

    def _end_activation(
        self,
        flow: Flow,
        job_state: JobState,
        routine_id: str | None,
        outcome: str,
        duration: float | None,
        error: BaseException | None = None,
        strategy: str = "",
    ) -> None:
        var = self._act_span
        entry = var.get()
        if entry is not None and entry.job_id != job_state.job_id:
            entry = None  # not an activation this context started: leave it open
        attrs = {"routilux.flow_id": flow.flow_id, "routilux.routine_id": routine_id or ""}
        if entry is not None:
            var.set(entry.outer)
            span, t0 = entry.span, entry.t0
            if duration is None:
                duration = time.perf_counter() - t0
            if error is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                span.set_attribute("routilux.error_strategy", strategy)
            span.end()
        if duration is not None:
            self._duration.record(duration, attrs)
        self._activations.add(1, {**attrs, "routilux.outcome": outcome})

    @hookimpl
    def routilux_activation_finished(
        self, flow: Flow, job_state: JobState, routine_id: str | None, duration: float
    ) -> None:
        """
        End the activation span; count it and record its duration.
        """
        self._end_activation(flow, job_state, routine_id, "completed", duration)

    @hookimpl
    def routilux_activation_failed(
        self,
        flow: Flow,
        job_state: JobState,
        routine_id: str | None,
        error: BaseException,
        strategy: str,
    ) -> None:
        """
        Record the error on the activation span (and on the job's span when it stops the
        job), end it, count it.
        """
        if strategy == "stop":
            with self._lock:
                job_span = self._job_spans.get(job_state.job_id)
            if job_span is not None:
                job_span.record_exception(error)
        self._end_activation(flow, job_state, routine_id, "failed", None, error, strategy)

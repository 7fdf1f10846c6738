"""
OpenTelemetryPlugin, checked with the SDK's in-memory span exporter and metric reader.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, PluginManager, Routine


pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from routilux_handlers import OpenTelemetryPlugin


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["value"])

    def go(self, n: int = 2, fail: bool = False, pause: bool = False, **_: Any) -> None:
        for i in range(n):
            self.emit("out", value=i)
        if pause:
            ctx = self.get_execution_context()
            assert ctx is not None
            ctx.flow.pause(ctx.job_state, reason="later")
        if fail:
            raise RuntimeError("entry broke")


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        if value == 1:
            raise ValueError("one is bad")


class AsyncSink(Routine):
    """An ``async def`` handler: ``size`` activations wait for each other at a barrier."""

    def __init__(self, size: int = 3, fail_on: Any = None) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.size = size
        self.fail_on = fail_on
        self.arrived = 0
        self.opened_ns = 0
        self.barrier: asyncio.Event | None = None

    async def take(self, value: Any = None, **_: Any) -> None:
        # Every activation runs on the one routilux-async loop, so plain counters are safe.
        if self.barrier is None:
            self.barrier = asyncio.Event()
        self.arrived += 1
        if self.arrived == self.size:
            self.opened_ns = time.time_ns()
            self.barrier.set()
        await asyncio.wait_for(self.barrier.wait(), timeout=10)
        if value == self.fail_on:
            raise ValueError(f"{value} is bad")


class AsyncHang(Routine):
    """An ``async def`` handler that waits until it is cancelled; ``started`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.started = threading.Semaphore(0)

    async def take(self, **_: Any) -> None:
        self.started.release()
        await asyncio.Event().wait()


class _NotifyOnEnd(SpanProcessor):
    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond

    def on_end(self, span: ReadableSpan) -> None:
        with self._cond:
            self._cond.notify_all()


class Telemetry:
    """An OTel plugin wired to in-memory exporters, in its own plugin manager."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        #: Notified each time a span ends (tests wait on it instead of polling).
        self.ended = threading.Condition()
        tracer_provider.add_span_processor(_NotifyOnEnd(self.ended))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.plugin = OpenTelemetryPlugin(tracer_provider, meter_provider)
        self.pm = PluginManager(load_entry_points=False)
        self.pm.register(self.plugin)

    def flow(self, strategy: str = "sequential") -> Flow:
        flow = Flow("otel", execution_strategy=strategy, max_workers=4, plugins=self.pm)
        flow.add_routine(Source(), "src")
        flow.add_routine(Sink(), "sink")
        flow.connect("src", "out", "sink", "input")
        return flow

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def tel() -> Telemetry:
    return Telemetry()


class TestSpans:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_job_and_activation_spans(self, tel: Telemetry, strategy: str) -> None:
        """One job span, one child span per activation, with flow/job/routine attributes."""
        with tel.flow(strategy) as flow:
            js = flow.execute("src", {"n": 3})
        spans = tel.spans.get_finished_spans()
        [job] = [s for s in spans if s.name == "routilux.job"]
        acts = [s for s in spans if s.name == "routilux.activation"]
        assert {
            "routilux.flow_id": "otel",
            "routilux.job_id": js.job_id,
            "routilux.entry_routine_id": "src",
            "routilux.status": "completed",
        } == dict(job.attributes or {})
        assert len(acts) == 4
        assert all(a.parent is not None and a.parent.span_id == job.context.span_id for a in acts)
        assert all(a.context.trace_id == job.context.trace_id for a in acts)
        assert sorted(str((a.attributes or {})["routilux.routine_id"]) for a in acts) == [
            "sink",
            "sink",
            "sink",
            "src",
        ]
        src = next(a for a in acts if (a.attributes or {})["routilux.routine_id"] == "src")
        assert {
            "routilux.flow_id": "otel",
            "routilux.job_id": js.job_id,
            "routilux.slot": "trigger",
            "routilux.attempt": 1,
        }.items() <= dict(src.attributes or {}).items()

    @staticmethod
    def _async_flow(tel: Telemetry, sink: AsyncSink) -> Flow:
        flow = Flow("otel", execution_strategy="concurrent", max_workers=4, plugins=tel.pm)
        flow.add_routine(Source(), "src")
        flow.add_routine(sink, "sink")
        flow.connect("src", "out", "sink", "input")
        return flow

    def test_concurrent_async_activations_each_get_their_span(self, tel: Telemetry) -> None:
        """
        Coroutine activations of one job all run on the one loop thread, in flight at once:
        each still gets its own span, ended when it ends, child of the job's span.
        """
        sink = AsyncSink(3)
        with self._async_flow(tel, sink) as flow:
            js = flow.execute("src", {"n": 3})
            assert js.wait_for_completion(10)
        assert js.status == "completed"
        assert sink.arrived == 3 and sink.opened_ns  # all three were in flight together
        spans = tel.spans.get_finished_spans()
        [job] = [s for s in spans if s.name == "routilux.job"]
        acts = [s for s in spans if s.name == "routilux.activation"]
        assert len(acts) == 4
        assert sorted(str((a.attributes or {})["routilux.routine_id"]) for a in acts) == [
            "sink",
            "sink",
            "sink",
            "src",
        ]
        assert all(a.parent is not None and a.parent.span_id == job.context.span_id for a in acts)
        assert all(a.context.trace_id == job.context.trace_id for a in acts)
        assert all(StatusCode.ERROR is not a.status.status_code for a in acts)
        for act in acts:
            if (act.attributes or {})["routilux.routine_id"] == "sink":
                # Each sink span covers its activation, which waited for the barrier to open.
                assert act.start_time is not None and act.end_time is not None
                assert act.start_time <= sink.opened_ns <= act.end_time
        durations = {
            p.attributes["routilux.routine_id"]: p.count
            for p in tel.metrics()["routilux.activation.duration"]
        }
        assert durations == {"src": 1, "sink": 3}

    def test_concurrent_async_error_on_its_own_span(self, tel: Telemetry) -> None:
        """The error of one of several concurrent coroutine activations is on its span only."""
        sink = AsyncSink(3, fail_on=1)
        with self._async_flow(tel, sink) as flow:
            js = flow.execute("src", {"n": 3})
            assert js.wait_for_completion(10)
        assert sink.arrived == 3 and sink.opened_ns
        acts = [s for s in tel.spans.get_finished_spans() if s.name == "routilux.activation"]
        assert len(acts) == 4
        [bad] = [a for a in acts if a.status.status_code is StatusCode.ERROR]
        assert (bad.attributes or {})["routilux.routine_id"] == "sink"
        assert (bad.attributes or {})["routilux.error_strategy"] == "continue"
        assert [(e.attributes or {})["exception.type"] for e in bad.events] == ["ValueError"]
        assert all(not a.events for a in acts if a is not bad)
        outcomes = {
            (p.attributes["routilux.routine_id"], p.attributes["routilux.outcome"]): p.value
            for p in tel.metrics()["routilux.activations"]
        }
        assert outcomes == {
            ("src", "completed"): 1,
            ("sink", "completed"): 2,
            ("sink", "failed"): 1,
        }

    def test_cancelled_async_activations_end_their_spans(self, tel: Telemetry) -> None:
        """Cancelling a job ends the span of each of its in-flight coroutine activations."""
        hang = AsyncHang()
        flow = Flow("otel", execution_strategy="concurrent", max_workers=4, plugins=tel.pm)
        flow.add_routine(Source(), "src")
        flow.add_routine(hang, "sink")
        flow.connect("src", "out", "sink", "input")

        def activation_spans() -> list[Any]:
            return [s for s in tel.spans.get_finished_spans() if s.name == "routilux.activation"]

        with flow:
            js = flow.submit("src", {"n": 3})
            for _ in range(3):
                assert hang.started.acquire(timeout=10), "a coroutine never started"
            flow.cancel(js)
            assert js.wait_for_completion(10)
            # The coroutines unwind on their loop after cancel() returns.
            with tel.ended:
                assert tel.ended.wait_for(lambda: len(activation_spans()) == 4, 30)
        assert js.status == "cancelled"
        ended = sorted(
            (str((a.attributes or {})["routilux.routine_id"]), a.status.status_code.name)
            for a in activation_spans()
        )
        assert ended == [("sink", "ERROR"), ("sink", "ERROR"), ("sink", "ERROR"), ("src", "UNSET")]
        for act in activation_spans():
            if (act.attributes or {})["routilux.routine_id"] == "sink":
                assert (act.attributes or {})["routilux.error_strategy"] == "cancel"

    def test_errors_recorded_on_spans(self, tel: Telemetry) -> None:
        """A handler error is an exception event and ERROR status on its activation span."""
        with tel.flow() as flow:
            flow.execute("src", {"n": 2})
        acts = [s for s in tel.spans.get_finished_spans() if s.name == "routilux.activation"]
        [bad] = [a for a in acts if a.status.status_code is StatusCode.ERROR]
        assert (bad.attributes or {})["routilux.error_strategy"] == "continue"
        [event] = bad.events
        assert event.name == "exception"
        assert (event.attributes or {})["exception.type"] == "ValueError"
        [job] = [s for s in tel.spans.get_finished_spans() if s.name == "routilux.job"]
        assert StatusCode.ERROR is not job.status.status_code

    def test_failed_job_span(self, tel: Telemetry) -> None:
        """A job failed by its entry routine has an ERROR job span with the exception."""
        with tel.flow() as flow:
            js = flow.execute("src", {"n": 0, "fail": True})
        assert js.status == "failed"
        [job] = [s for s in tel.spans.get_finished_spans() if s.name == "routilux.job"]
        assert StatusCode.ERROR is job.status.status_code
        assert (job.attributes or {})["routilux.status"] == "failed"
        assert [e.name for e in job.events] == ["exception"]

    def test_retries_get_one_span_per_attempt(self, tel: Telemetry) -> None:
        """Each attempt of a retried activation has its own span and attempt number."""
        flow = tel.flow()
        flow.routines["sink"].set_error_handler(
            ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
        )
        with flow:
            flow.execute("src", {"n": 2})
        attempts = sorted(
            int((s.attributes or {})["routilux.attempt"])
            for s in tel.spans.get_finished_spans()
            if s.name == "routilux.activation"
            and (s.attributes or {})["routilux.routine_id"] == "sink"
        )
        assert attempts == [1, 1, 2, 3]

    def test_pause_and_resume_give_two_job_spans(self, tel: Telemetry) -> None:
        """A paused job's span ends with status paused; the resumed run gets a new span."""
        with tel.flow() as flow:
            js = flow.execute("src", {"n": 1, "pause": True})
            assert js.status == "paused"
            flow.resume(js)
            assert js.wait_for_completion(10)
        jobs = [s for s in tel.spans.get_finished_spans() if s.name == "routilux.job"]
        assert [(s.attributes or {})["routilux.status"] for s in jobs] == ["paused", "completed"]


class TestMetrics:
    def test_counters_and_histogram(self, tel: Telemetry) -> None:
        """Jobs and activations are counted by outcome; durations go to a histogram."""
        with tel.flow() as flow:
            flow.execute("src", {"n": 3})
            flow.execute("src", {"n": 0, "fail": True})
        metrics = tel.metrics()
        jobs = {p.attributes["routilux.status"]: p.value for p in metrics["routilux.jobs"]}
        assert jobs == {"completed": 1, "failed": 1}
        acts = {
            (p.attributes["routilux.routine_id"], p.attributes["routilux.outcome"]): p.value
            for p in metrics["routilux.activations"]
        }
        assert acts == {
            ("src", "completed"): 1,
            ("src", "failed"): 1,
            ("sink", "completed"): 2,
            ("sink", "failed"): 1,
        }
        hist = {
            p.attributes["routilux.routine_id"]: p.count
            for p in metrics["routilux.activation.duration"]
        }
        assert hist == {"src": 2, "sink": 3}

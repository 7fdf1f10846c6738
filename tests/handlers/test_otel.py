"""
OpenTelemetryPlugin, checked with the SDK's in-memory span exporter and metric reader.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, PluginManager, Routine


pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
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


class Telemetry:
    """An OTel plugin wired to in-memory exporters, in its own plugin manager."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
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
            assert js.wait_for_completion(30)
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

"""
structlog in the core: bound flow_id / job_id / routine_id, debug for activations, warning or
error for failures, and silence (no configure, no output) until the application configures it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from helpers import Gate, shut_down_within, wait_until
from structlog.testing import capture_logs

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    Flow,
    JobState,
    OutputHandler,
    PluginManager,
    Routine,
    hookimpl,
)
from routilux._util._log import bind, is_enabled, logger
from routilux.exceptions import RoutiluxWarning


WAIT = 10.0


@pytest.fixture(autouse=True)
def structlog_reset() -> Iterator[None]:
    """Give structlog back the state it had before the test (capture_logs configures it)."""
    was = structlog.is_configured()
    config = structlog.get_config()
    yield
    if was:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["value"])

    def go(self, fail: bool = False, **_: Any) -> None:
        if fail:
            raise RuntimeError("entry broke")
        self.emit("out", value=1)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        raise ValueError(f"sink broke on {value}")


def make_flow(strategy: str = "sequential") -> Flow:
    flow = Flow("logflow", execution_strategy=strategy, plugins=PluginManager(False))
    flow.add_routine(Source(), "src")
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "out", "sink", "input")
    return flow


class TestBoundContext:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_downstream_failure_is_a_warning_with_context(self, strategy: str) -> None:
        """A downstream handler error logs a warning bound to flow_id, job_id and routine_id."""
        with capture_logs() as logs, make_flow(strategy) as flow:
            js = flow.execute("src")
        [entry] = [e for e in logs if e["event"] == "activation_failed"]
        assert {
            "flow_id": "logflow",
            "job_id": js.job_id,
            "routine_id": "sink",
            "slot": "input",
            "strategy": "continue",
            "log_level": "warning",
        }.items() <= entry.items()
        assert "sink broke on 1" in entry["error"]

    def test_entry_failure_is_an_error_with_context(self) -> None:
        """An entry error that fails the job logs at error level with the bound context."""
        with capture_logs() as logs, make_flow() as flow:
            js = flow.execute("src", {"fail": True})
        assert js.status == "failed"
        [entry] = [e for e in logs if e["event"] == "activation_failed"]
        assert (entry["log_level"], entry["strategy"]) == ("error", "stop")
        assert ("logflow", js.job_id, "src") == (
            entry["flow_id"],
            entry["job_id"],
            entry["routine_id"],
        )

    def test_retry_is_logged_per_attempt(self) -> None:
        """Each failed attempt of a retried activation logs its strategy."""
        flow = make_flow()
        flow.routines["sink"].set_error_handler(
            ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
        )
        with capture_logs() as logs, flow:
            flow.execute("src")
        strategies = [e["strategy"] for e in logs if e["event"] == "activation_failed"]
        assert strategies == ["retry", "retry", "continue"]


class TestDebugEvents:
    def test_activations_logged_at_debug(self) -> None:
        """Activations log started / finished at debug level with their routine id."""
        flow = Flow("dbg", plugins=PluginManager(False))
        flow.add_routine(Source(), "src")
        with capture_logs() as logs, flow:
            js = flow.execute("src")
        debug = [(e["event"], e.get("routine_id")) for e in logs if e["log_level"] == "debug"]
        assert debug == [
            ("job_started", None),
            ("activation_started", "src"),
            ("activation_finished", "src"),
            ("job_finished", None),
        ]
        assert all(e["job_id"] == js.job_id for e in logs)

    def test_job_decides_once(self) -> None:
        """The debug switch is read when the job starts; unconfigured structlog means off."""
        structlog.reset_defaults()
        assert not is_enabled()
        with make_flow() as flow:
            flow.execute("src")
        assert flow._last_run is not None
        assert flow._last_run.debug is False
        with capture_logs(), make_flow() as flow:
            flow.execute("src")
        assert flow._last_run is not None
        assert flow._last_run.debug is True


class TestQuietByDefault:
    def test_unconfigured_loggers_drop_everything(self) -> None:
        """Without configuration, the library's loggers are no-ops and return nothing."""
        structlog.reset_defaults()
        assert logger.error("x", a=1) is None
        assert bind(flow_id="f").bind(job_id="j").warning("y") is None

    def test_subprocess_prints_nothing(self) -> None:
        """A flow with handler errors and a raising plugin prints nothing and configures nothing."""
        script = textwrap.dedent(
            """
            import structlog
            from routilux import Flow, Routine, PluginManager, hookimpl

            class Src(Routine):
                def __init__(self):
                    super().__init__()
                    self.define_slot("trigger", self.go)
                    self.define_event("out")
                def go(self, fail=False, **kw):
                    self.emit("out", v=1)
                    if fail:
                        raise RuntimeError("entry broke")

            class Snk(Routine):
                def __init__(self):
                    super().__init__()
                    self.define_slot("input", self.take)
                def take(self, **kw):
                    raise ValueError("sink broke")

            class Bad:
                @hookimpl
                def routilux_activation_started(self):
                    raise RuntimeError("plugin broke")

            pm = PluginManager()
            pm.register(Bad())
            for strategy in ("sequential", "concurrent"):
                flow = Flow(execution_strategy=strategy, plugins=pm)
                flow.add_routine(Src(), "a")
                flow.add_routine(Snk(), "b")
                flow.connect("a", "out", "b", "input")
                assert flow.execute("a").status == "completed"
                assert flow.execute("a", {"fail": True}).status == "failed"
                flow.shutdown()
            assert sum(pm.failures.values()) >= 4, pm.failures
            assert not structlog.is_configured()
            """
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=10, check=False
        )
        assert (proc.stdout, proc.stderr, proc.returncode) == ("", "", 0)


class Halt(BaseException):
    """Not an Exception: crosses the relay and is stopped by the job's hook boundary."""


class TestFailureLogsAreBound:
    """Failures outside a handler (plugins, output handlers) log the job's context too."""

    def test_plugin_failure_carries_the_job(self) -> None:
        """A raising hook logs plugin_failed with flow_id, job_id and the routine id."""

        class Bad:
            @hookimpl
            def routilux_activation_started(self) -> None:
                raise RuntimeError("plugin broke")

            @hookimpl
            def routilux_job_started(self) -> None:
                raise RuntimeError("plugin broke at start")

        pm = PluginManager(False)
        pm.register(Bad(), "bad")
        flow = Flow("logflow", plugins=pm)
        flow.add_routine(Source(), "src")
        with capture_logs() as logs, flow:
            js = flow.execute("src")
        failed = [e for e in logs if e["event"] == "plugin_failed"]
        [started] = [e for e in failed if e["hook"] == "routilux_activation_started"]
        assert {
            "flow_id": "logflow",
            "job_id": js.job_id,
            "routine_id": "src",
            "plugin": "bad",
            "log_level": "error",
        }.items() <= started.items()
        [job] = [e for e in failed if e["hook"] == "routilux_job_started"]
        assert (job["flow_id"], job["job_id"], "routine_id" in job) == ("logflow", js.job_id, False)

    def test_hook_boundary_failures_carry_the_job(self) -> None:
        """A BaseException from a hook or from the change listener is logged with the job."""

        class Halting:
            @hookimpl
            def routilux_activation_finished(self) -> None:
                raise Halt("hook")

            @hookimpl
            def routilux_job_state_changed(self, change: Any) -> None:
                if change.kind == "shared_data":
                    raise Halt("listener")

        class Sharer(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", self.go)

            def go(self, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.job_state.update_shared_data("k", 1)

        pm = PluginManager(False)
        pm.register(Halting(), "halting")
        flow = Flow("logflow", plugins=pm)
        flow.add_routine(Sharer(), "sharer")
        with capture_logs() as logs, flow:
            js = flow.execute("sharer")
        assert js.status == "completed"
        failed = [e for e in logs if e["event"] == "plugin_failed"]
        [hook] = [e for e in failed if e["hook"] == "routilux_activation_finished"]
        assert {"flow_id": "logflow", "job_id": js.job_id, "routine_id": "sharer"}.items() <= (
            hook.items()
        )
        assert "Halt('hook')" in hook["error"]
        [listener] = [e for e in failed if e["hook"] == "change_listener"]
        assert {"flow_id": "logflow", "job_id": js.job_id}.items() <= listener.items()
        assert "Halt('listener')" in listener["error"]

    def test_output_handler_failure_carries_the_job(self) -> None:
        """A raising output handler logs output_handler_failed with flow, job and routine."""

        class Bad(OutputHandler):
            def handle(self, *a: Any, **k: Any) -> None:
                raise RuntimeError("disk full")

        js = JobState("logflow")
        js.set_output_handler(Bad())
        with capture_logs() as logs, pytest.warns(RoutiluxWarning):
            js.send_output("r1", "t", {})
        [entry] = [e for e in logs if e["event"] == "output_handler_failed"]
        assert {
            "flow_id": "logflow",
            "job_id": js.job_id,
            "routine_id": "r1",
            "handler": "Bad",
            "log_level": "warning",
        }.items() <= entry.items()


@pytest.mark.parametrize("paused_first", [False, True], ids=["completes", "pauses-then-completes"])
def test_a_waiter_whose_event_loop_closed_is_logged_once_and_the_job_goes_on(
    paused_first: bool,
) -> None:
    """``aexecute(timeout=...)`` returned the running job and its event loop closed: when
    the job settles, telling that loop fails. The job completes all the same, and the
    failure is logged once at debug level with the job's id, also when the job settles
    first paused and then again, resumed and completed (a waiter is told once)."""
    gate = Gate()
    flow = Flow("waiter", plugins=PluginManager(False))
    flow.add_routine(gate, "gate")
    with capture_logs() as logs, shut_down_within(flow):
        js = asyncio.run(flow.aexecute("gate", {"value": 1}, timeout=0.01))
        assert "running" == js.status
        assert gate.entered.wait(WAIT), "the handler never started"
        if paused_first:
            pausing = threading.Thread(target=flow.pause, args=(js,), daemon=True)
            pausing.start()
            wait_until(lambda: "paused" == js.status, WAIT, "the job pausing")
        gate.release.set()
        if paused_first:
            pausing.join(WAIT)
            assert not pausing.is_alive(), "pause() never returned after the handler did"
            assert js.wait_settled(WAIT), f"job still {js.status} with a handler running"
            flow.resume(js)
        assert js.wait_for_completion(WAIT), f"job still {js.status}"
    assert "completed" == js.status
    failed = [e for e in logs if "waiter_failed" == e["event"]]
    assert [("debug", js.job_id)] == [(e["log_level"], e["job_id"]) for e in failed]
    assert "closed" in failed[0]["error"]

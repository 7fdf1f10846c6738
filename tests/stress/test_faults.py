"""
Fault injection: handlers, merge callables, output handlers and plugins that raise,
return the wrong type, or raise ``BaseException`` subclasses on a worker.

For every fault, the faulty job ends in the documented status (see docs/guarantees.md),
the worker pool survives, a healthy job of the same flow running alongside is untouched,
and nothing waits forever.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

from routilux import (
    CallbackOutputHandler,
    Flow,
    JobState,
    OutputHandler,
    PluginManager,
    Routine,
    hookimpl,
)
from routilux.exceptions import RoutiluxWarning


WAIT = 10.0
FANOUT = 3


class Boom(Exception):
    """The ordinary error the faults raise."""


class Src(Routine):
    """Entry: emits ``out`` ``n`` times; ``boom`` marks the faulty job's payloads."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["boom", "i"])

    def go(self, boom: bool = False, n: int = FANOUT, entry_fault: Any = None) -> None:
        if boom and entry_fault is not None:
            entry_fault()
        for i in range(n):
            self.emit("out", boom=boom, i=i)


class Victim(Routine):
    """Calls ``fault()`` for the faulty job's payloads, counts every delivery."""

    def __init__(self, fault: Callable[[], Any] | None = None, merge: Any = "override") -> None:
        super().__init__()
        self.fault = fault
        self.define_slot("inp", self.take, merge_strategy=merge)

    def take(self, data: Any) -> Any:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("victim", lambda v: v + 1, 0)
        boom = data.get("boom") if isinstance(data, dict) else True
        if boom and self.fault is not None:
            return self.fault()
        return None


class Bystander(Routine):
    """Counts deliveries; never fails."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", self.take)

    def take(self, i: int) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("bystander", lambda v: v + 1, 0)


class Talker(Routine):
    """Sends one output per delivery."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", self.take)

    def take(self, i: int, boom: bool = False) -> None:
        self.send_output("said", i=i, boom=boom)


def build(
    *,
    fault: Callable[[], Any] | None = None,
    merge: Any = "override",
    plugins: PluginManager | None = None,
    talker: bool = False,
) -> Flow:
    """``src -> (victim, bystander[, talker])`` on 3 concurrent workers."""
    flow = Flow(execution_strategy="concurrent", max_workers=3, plugins=plugins)
    flow.add_routine(Src(), "src")
    flow.add_routine(Victim(fault, merge), "victim")
    flow.add_routine(Bystander(), "bystander")
    flow.connect("src", "out", "victim", "inp")
    flow.connect("src", "out", "bystander", "inp")
    if talker:
        flow.add_routine(Talker(), "talker")
        flow.connect("src", "out", "talker", "inp")
    return flow


def run_pair(
    flow: Flow, *, faulty: JobState | None = None, entry_fault: Any = None
) -> tuple[JobState, JobState]:
    """
    Submit a faulty job and a healthy one at once; wait for both, bounded.
    """
    bad = flow.submit("src", {"boom": True, "entry_fault": entry_fault}, job_state=faulty)
    good = flow.submit("src", {"boom": False})
    assert bad.wait_for_completion(WAIT), f"faulty job hung: {bad!r}"
    assert good.wait_for_completion(WAIT), f"healthy job hung: {good!r}"
    assert flow.wait_for_completion(WAIT), "flow.wait_for_completion hung"
    return bad, good


def assert_healthy(flow: Flow, good: JobState) -> None:
    """The healthy job got everything and the pool still runs new jobs."""
    assert good.status == "completed"
    assert good.shared_data.get("bystander") == FANOUT
    assert good.shared_data.get("victim") == FANOUT
    again = flow.submit("src", {"boom": False})
    assert again.wait_for_completion(WAIT), "pool did not survive the fault"
    assert again.status == "completed"
    pool = flow._executor
    assert pool is not None
    assert all(t.is_alive() for t in pool._threads), "a worker thread died"
    flow.shutdown(wait=True, timeout=WAIT)


def raiser(exc: BaseException) -> Callable[..., Any]:
    def fault(*_: Any, **__: Any) -> Any:
        raise exc

    return fault


FATAL = [KeyboardInterrupt("injected"), SystemExit(3), GeneratorExit()]
FATAL_IDS = ["KeyboardInterrupt", "SystemExit", "GeneratorExit"]


class TestHandlerFaults:
    def test_downstream_error_is_recorded_and_job_completes(self) -> None:
        """A downstream Exception is recorded; the job still completes (default strategy)."""
        flow = build(fault=raiser(Boom("bad")))
        bad, good = run_pair(flow)
        assert bad.status == "completed"
        assert bad.shared_data["bystander"] == FANOUT
        errors = [r for r in bad.execution_history if r.event_name == "error"]
        assert len(errors) == FANOUT
        assert bad.routine_states["victim"]["status"] == "failed"
        assert_healthy(flow, good)

    def test_entry_error_fails_job(self) -> None:
        """An Exception in the entry handler fails the job; nothing downstream runs."""
        flow = build()
        bad, good = run_pair(flow, entry_fault=raiser(Boom("entry")))
        assert bad.status == "failed"
        assert "bystander" not in bad.shared_data
        assert_healthy(flow, good)

    @pytest.mark.parametrize("exc", FATAL, ids=FATAL_IDS)
    def test_fatal_base_exception_in_worker_fails_job(self, exc: BaseException) -> None:
        """A BaseException in a worker fails that job; the worker and other jobs go on."""
        flow = build(fault=raiser(exc))
        bad, good = run_pair(flow)
        assert bad.status == "failed"
        assert bad.routine_states["victim"]["status"] == "failed"
        assert_healthy(flow, good)

    @pytest.mark.parametrize("exc", FATAL, ids=FATAL_IDS)
    def test_fatal_base_exception_in_entry_on_worker(self, exc: BaseException) -> None:
        """A BaseException in a submitted job's entry handler fails only that job."""
        flow = build()
        bad, good = run_pair(flow, entry_fault=raiser(exc))
        assert bad.status == "failed"
        assert_healthy(flow, good)

    @pytest.mark.parametrize(
        "value",
        [None, 42, "text", object(), iter(()), types.SimpleNamespace(x=1)],
        ids=["None", "int", "str", "object", "iterator", "namespace"],
    )
    def test_handler_return_value_is_ignored(self, value: Any) -> None:
        """Whatever a sync handler returns is ignored: the job completes normally."""
        flow = build(fault=lambda: value)
        bad, good = run_pair(flow)
        assert bad.status == "completed"
        assert bad.shared_data["victim"] == FANOUT
        assert_healthy(flow, good)

    def test_exception_with_broken_str(self) -> None:
        """An exception whose __str__ and __repr__ raise is still booked; nothing hangs."""

        class Nasty(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str for you")

            def __repr__(self) -> str:
                raise RuntimeError("no repr for you")

        flow = build(fault=raiser(Nasty()))
        bad, good = run_pair(flow)
        assert bad.status in ("completed", "failed")
        assert_healthy(flow, good)

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    @pytest.mark.parametrize("lane", ["sync", "async"])
    def test_lone_handler_with_broken_str_ends_its_job(self, strategy: str, lane: str) -> None:
        """The only handler of a job raises an exception whose __str__ and __repr__ raise:
        the job still ends (an entry error fails it) and the error is recorded by type."""

        class Nasty(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str for you")

            def __repr__(self) -> str:
                raise RuntimeError("no repr for you")

        class Lone(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", self.go_async if lane == "async" else self.go)

            def go(self, **_: Any) -> None:
                raise Nasty

            async def go_async(self, **_: Any) -> None:
                raise Nasty

        flow = Flow(execution_strategy=strategy)
        flow.add_routine(Lone(), "lone")
        js = flow.execute("lone", timeout=WAIT)
        assert js.wait_for_completion(WAIT)
        assert js.status == "failed"
        [error] = [r for r in js.execution_history if r.event_name == "error"]
        assert error.data["error_type"] == "Nasty"
        assert "Nasty" in error.data["error"]
        assert js.routine_states["lone"]["status"] == "failed"
        flow.shutdown()

    def test_output_handler_raising_broken_str_keeps_the_output(self) -> None:
        """An output handler raising such an exception: the output is still logged, the job
        completes, and the warning names the exception's type."""

        class Nasty(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str for you")

            def __repr__(self) -> str:
                raise RuntimeError("no repr for you")

        def broken(*_: Any) -> None:
            raise Nasty

        class Talker(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", self.go)

            def go(self, **_: Any) -> None:
                self.send_output("said", text="hi")

        flow = Flow()
        flow.add_routine(Talker(), "t")
        with pytest.warns(RoutiluxWarning, match="Nasty"):
            js = flow.execute("t", output_handler=CallbackOutputHandler(broken))
        assert js.status == "completed"
        assert [o["data"] for o in js.output_log] == [{"text": "hi"}]

    def test_blocking_execute_reraises_keyboard_interrupt(self) -> None:
        """A sequential blocking execute re-raises a KeyboardInterrupt after failing the job."""
        flow = Flow()
        flow.add_routine(Src(), "src")
        flow.add_routine(Victim(raiser(KeyboardInterrupt("stop"))), "victim")
        flow.connect("src", "out", "victim", "inp")
        js = JobState(flow.flow_id)
        with pytest.raises(KeyboardInterrupt):
            flow.execute("src", {"boom": True}, job_state=js)
        assert js.status == "failed"
        assert js.wait_for_completion(WAIT)
        assert flow.wait_for_completion(WAIT)
        again = flow.execute("src", {"boom": False})
        assert again.status == "completed"


def _merge_raising(exc: BaseException) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    def merge(buffer: dict[str, Any], new: dict[str, Any]) -> Any:
        if new.get("boom"):
            raise exc
        return dict(new)

    return merge


def _merge_returning(value: Any) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    def merge(buffer: Any, new: dict[str, Any]) -> Any:
        if new.get("boom"):
            return value
        return dict(new)

    return merge


class TestMergeFaults:
    def test_merge_error_is_a_handler_error(self) -> None:
        """A merge callable that raises counts as that activation's error."""
        flow = build(merge=_merge_raising(Boom("merge")))
        bad, good = run_pair(flow)
        assert bad.status == "completed"
        assert "victim" not in bad.shared_data
        assert bad.routine_states["victim"]["status"] == "failed"
        assert_healthy(flow, good)

    @pytest.mark.parametrize("exc", FATAL, ids=FATAL_IDS)
    def test_merge_fatal_fails_job(self, exc: BaseException) -> None:
        """A merge callable raising a BaseException fails the job, nothing else."""
        flow = build(merge=_merge_raising(exc))
        bad, good = run_pair(flow)
        assert bad.status == "failed"
        assert_healthy(flow, good)

    @pytest.mark.parametrize(
        "value", [None, 7, ["a"], "text", object()], ids=["None", "int", "list", "str", "obj"]
    )
    def test_merge_wrong_type(self, value: Any) -> None:
        """
        A merge callable returning a non-dict: the value goes to the handler's caller; an
        activation that cannot take it is booked as that activation's error. Either way
        each activation is accounted for once and the job completes.
        """
        flow = build(merge=_merge_returning(value), fault=None)
        bad, good = run_pair(flow)
        assert bad.status == "completed"
        errors = [r for r in bad.execution_history if r.event_name == "error"]
        assert bad.shared_data.get("victim", 0) + len(errors) == FANOUT
        assert_healthy(flow, good)


class _FailingOutput(OutputHandler):
    def __init__(self, exc: BaseException | None, value: Any = None) -> None:
        self.exc = exc
        self.value = value
        self.lock = threading.Lock()
        self.calls = 0

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: Any = None,
    ) -> None:
        with self.lock:
            self.calls += 1
        if data.get("boom") and self.exc is not None:
            raise self.exc
        return self.value


class TestOutputHandlerFaults:
    def test_output_handler_error_warns_and_job_goes_on(self) -> None:
        """A raising output handler: a RoutiluxWarning, the output is still logged."""
        flow = build(talker=True)
        handler = _FailingOutput(Boom("out"))
        with pytest.warns(RoutiluxWarning, match="Output handler failed"):
            bad, good = run_pair(flow, faulty=_with_output(flow, handler))
        assert bad.status == "completed"
        assert len(bad.output_log) == FANOUT
        assert handler.calls == FANOUT
        assert_healthy(flow, good)

    @pytest.mark.parametrize("exc", FATAL, ids=FATAL_IDS)
    def test_output_handler_fatal_fails_job(self, exc: BaseException) -> None:
        """An output handler raising a BaseException fails that job only."""
        flow = build(talker=True)
        bad, good = run_pair(flow, faulty=_with_output(flow, _FailingOutput(exc)))
        assert bad.status == "failed"
        assert_healthy(flow, good)

    def test_output_handler_return_value_ignored(self) -> None:
        """An output handler returning junk changes nothing."""
        flow = build(talker=True)
        bad, good = run_pair(flow, faulty=_with_output(flow, _FailingOutput(None, object())))
        assert bad.status == "completed"
        assert len(bad.output_log) == FANOUT
        assert_healthy(flow, good)


def _with_output(flow: Flow, handler: OutputHandler) -> JobState:
    js = JobState(flow.flow_id)
    js.output_handler = handler
    return js


PLUGIN_HOOKS = [
    "routilux_job_started",
    "routilux_job_status_changed",
    "routilux_job_finished",
    "routilux_activation_started",
    "routilux_activation_finished",
    "routilux_activation_failed",
    "routilux_event_emitted",
    "routilux_job_state_changed",
]


def faulty_plugin(hook: str, exc: BaseException, victims: set[str]) -> object:
    """A plugin whose ``hook`` raises ``exc`` for the jobs in ``victims``."""

    def impl(job_state: JobState) -> None:
        if job_state.job_id in victims:
            raise exc

    impl.__name__ = hook
    return types.SimpleNamespace(**{hook: hookimpl(impl)})


def plugin_flow(hook: str, exc: BaseException) -> tuple[Flow, JobState, PluginManager]:
    victim = JobState("")
    pm = PluginManager(load_entry_points=False)
    pm.register(faulty_plugin(hook, exc, {victim.job_id}))
    fault = raiser(Boom("for activation_failed")) if hook == "routilux_activation_failed" else None
    flow = build(plugins=pm, fault=fault)
    victim.flow_id = flow.flow_id
    return flow, victim, pm


class TestPluginFaults:
    @pytest.mark.parametrize("hook", PLUGIN_HOOKS)
    def test_plugin_error_is_counted_and_job_unaffected(self, hook: str) -> None:
        """An Exception in any hook is counted; the job runs exactly as without it."""
        flow, victim, pm = plugin_flow(hook, Boom("plugin"))
        bad, good = run_pair(flow, faulty=victim)
        assert bad.status == "completed"
        assert bad.shared_data["bystander"] == FANOUT
        assert bad.shared_data["victim"] == FANOUT
        assert sum(pm.failures.values()) >= 1
        assert_healthy(flow, good)

    @pytest.mark.parametrize("hook", PLUGIN_HOOKS)
    @pytest.mark.parametrize("exc", FATAL, ids=FATAL_IDS)
    def test_plugin_base_exception_is_isolated(self, hook: str, exc: BaseException) -> None:
        """
        A BaseException (KeyboardInterrupt...) from any hook is isolated like an
        Exception: logged, and the job runs exactly as without the plugin. Nothing hangs,
        no activation is lost, the pool survives and the healthy job is untouched.
        """
        flow, victim, _ = plugin_flow(hook, exc)
        bad, good = run_pair(flow, faulty=victim)
        assert bad.status == "completed"
        assert bad.shared_data["bystander"] == FANOUT
        assert bad.shared_data["victim"] == FANOUT
        assert_healthy(flow, good)

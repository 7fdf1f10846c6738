"""
Flow: building, validation, execute/submit, ordering, isolation and concurrency.
"""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest
from helpers import Emitter, Gate, Relay, chain

from routilux import ErrorHandler, Flow, JobState, Routine
from routilux.exceptions import (
    ConfigurationError,
    DuplicateNameError,
    EventNotFoundError,
    FlowMismatchError,
    RoutiluxError,
    RoutineNotFoundError,
    SlotNotFoundError,
)
from routilux.flow import default_entry_slot


class TestConstruction:
    @pytest.mark.parametrize(
        ("strategy", "workers", "expected"),
        [("sequential", 5, 1), ("concurrent", 5, 5), ("concurrent", 3, 3), ("sequential", 9, 1)],
    )
    def test_max_workers(self, strategy: str, workers: int, expected: int) -> None:
        """Sequential forces one worker; concurrent keeps the given count."""
        assert expected == Flow(execution_strategy=strategy, max_workers=workers).max_workers

    @pytest.mark.parametrize("bad", ["parallel", "", None, 3])
    def test_unknown_strategy(self, bad: Any) -> None:
        """An unknown strategy is a ConfigurationError (a ValueError) naming the value."""
        with pytest.raises(ConfigurationError, match="Invalid execution strategy") as info:
            Flow(execution_strategy=bad)
        assert isinstance(info.value, ValueError) and info.value.value == bad

    @pytest.mark.parametrize("bad", [0, -1, 1.5, "4", True])
    def test_bad_max_workers(self, bad: Any) -> None:
        """max_workers must be an int >= 1."""
        with pytest.raises(ConfigurationError, match="max_workers"):
            Flow(execution_strategy="concurrent", max_workers=bad)

    @pytest.mark.parametrize(
        ("call", "name", "kind"),
        [
            (lambda f: f.connect("e", "out", "r0", "input", ["v"]), "param_mapping", TypeError),
            (lambda f: f.execute("e", [1, 2]), "entry_params", TypeError),
            (lambda f: f.submit("e", "items"), "entry_params", TypeError),
            (lambda f: f.execute("e", timeout=-1), "timeout", ValueError),
            (lambda f: f.execute("e", timeout="5"), "timeout", ValueError),
            (lambda f: f.routines["e"].define_slot("x", handler="nope"), "handler", TypeError),
        ],
    )
    def test_bad_arguments_are_named(self, call: Any, name: str, kind: type) -> None:
        """A wrong kind of argument raises a ConfigurationError naming it (also the built-in
        error Python would raise later), before any job starts."""
        flow = Flow()
        chain(flow, 1)
        with pytest.raises(ConfigurationError, match=name) as info:
            call(flow)
        assert (info.value.name, isinstance(info.value, kind)) == (name, True)
        assert flow.execution_tracker is None  # no job was started
        flow.shutdown()

    def test_flow_id_generated(self) -> None:
        """A falsy flow id becomes a fresh UUID."""
        a, b = Flow(), Flow("")
        assert a.flow_id != b.flow_id and len(a.flow_id) == 36
        assert repr(Flow("x")) == "Flow[x]"

    def test_set_execution_strategy(self) -> None:
        """Sequential sets 1 worker, concurrent resets to 5 by default; bad values raise."""
        flow = Flow()
        flow.set_execution_strategy("concurrent")
        assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 5)
        flow.set_execution_strategy("concurrent", 3)
        assert flow.max_workers == 3
        flow.set_execution_strategy("sequential")
        assert flow.max_workers == 1
        with pytest.raises(ValueError, match="Invalid execution strategy"):
            flow.set_execution_strategy("bogus")
        flow.shutdown()


class TestBuilding:
    def test_add_routine_sets_id(self) -> None:
        """add_routine returns the id and makes it the routine's _id."""
        flow = Flow()
        r = Routine()
        assert flow.add_routine(r, "s1") == "s1"
        assert r._id == "s1" and flow.routines["s1"] is r

    def test_add_routine_without_id_uses_generated_id(self) -> None:
        """Without an id, the routine's own generated _id is used."""
        flow = Flow()
        r = Routine()
        own = r._id
        assert flow.add_routine(r) == own

    def test_error_handler_for_routine(self) -> None:
        """The routine's own handler, else the flow's, else None."""
        flow = Flow()
        r = Routine()
        flow.add_routine(r, "r")
        assert flow._get_error_handler_for_routine(r, "r") is None
        flow.set_error_handler(on_flow := ErrorHandler("continue"))
        assert flow._get_error_handler_for_routine(r, "r") is on_flow
        r.set_error_handler(own := ErrorHandler("skip"))
        assert flow._get_error_handler_for_routine(r, "r") is own

    def test_duplicate_id(self) -> None:
        """A taken id raises DuplicateNameError, a ValueError."""
        flow = Flow()
        flow.add_routine(Routine(), "a")
        with pytest.raises(DuplicateNameError, match="'a' already exists"):
            flow.add_routine(Routine(), "a")

    @pytest.mark.parametrize(
        ("args", "error", "text"),
        [
            (("nope", "out", "r", "input"), RoutineNotFoundError, "Source routine 'nope'"),
            (("e", "nope", "r", "input"), EventNotFoundError, "Event 'nope'"),
            (("e", "out", "nope", "input"), RoutineNotFoundError, "Target routine 'nope'"),
            (("e", "out", "r", "nope"), SlotNotFoundError, "Slot 'nope'"),
        ],
    )
    def test_connect_validation(self, args: tuple[str, ...], error: type, text: str) -> None:
        """Each unknown end raises its own error, a ValueError that names it."""
        flow = Flow()
        flow.add_routine(Emitter(), "e")
        flow.add_routine(Relay(), "r")
        with pytest.raises(error, match=text) as info:
            flow.connect(*args)
        assert isinstance(info.value, ValueError) and isinstance(info.value, RoutiluxError)

    def test_connect_records_ids(self) -> None:
        """A connection knows its routine ids and is found by (event, slot)."""
        flow = Flow()
        e, r = Emitter(), Relay()
        flow.add_routine(e, "e")
        flow.add_routine(r, "r")
        conn = flow.connect("e", "out", "r", "input", {"value": "v"})
        assert (conn.source_routine_id, conn.target_routine_id) == ("e", "r")
        assert flow._find_connection(e.get_event("out"), r.get_slot("input")) is conn
        assert flow._find_connection(e.get_event("out"), e.get_slot("trigger")) is None


class TwoSlots(Routine):
    """A routine with two slots and no entry slot of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("a", handler=lambda **_: None)
        self.define_slot("b", handler=lambda **_: None)


class TestExecute:
    def test_unknown_entry(self) -> None:
        """An unknown entry id raises before anything runs."""
        with pytest.raises(RoutineNotFoundError):
            Flow().execute("missing")

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_chain_runs_every_routine(self, make_flow: Any, strategy: str) -> None:
        """Every routine of a chain runs and gets a routine state."""
        flow = make_flow(execution_strategy=strategy, max_workers=4)
        chain(flow, 5)
        js = flow.execute("e", {"items": [1, 2, 3]})
        assert js.status == "completed"
        assert len(js.shared_log) == 15
        for rid in ["e", "r0", "r1", "r2", "r3", "r4"]:
            state = js.routine_states[rid]
            assert state["status"] == "completed"
            assert {"start_time", "end_time", "execution_time", "activation_count"} <= state.keys()
        assert js.routine_states["r0"]["activation_count"] == 3

    def test_sequential_order_is_fifo_breadth_first(self, make_flow: Any) -> None:
        """Sequential jobs run activations in FIFO order: siblings before grandchildren."""
        order: list[str] = []
        flow = make_flow()
        flow.add_routine(Emitter(), "e")
        for name in ["a", "b", "c"]:
            r = Routine()
            r.define_slot("input", handler=lambda name=name, **_: order.append(name))
            flow.add_routine(r, name)
            flow.connect("e", "out", name, "input")
        flow.execute("e", {"items": [1, 2]})
        assert ["a", "b", "c", "a", "b", "c"] == order

    def test_missing_trigger_fails_job(self, make_flow: Any) -> None:
        """An entry routine with neither a 'trigger' nor an 'input' slot, nor a single
        slot, fails the job with a clear error."""
        flow = make_flow()
        flow.add_routine(TwoSlots(), "r")
        js = flow.execute("r")
        assert js.status == "failed"
        assert "has no 'trigger' slot (slots: 'a', 'b')" in js.routine_states["r"]["error"]

    def test_missing_trigger_with_continue_completes(self, make_flow: Any) -> None:
        """With a CONTINUE handler the missing trigger is recorded and the job completes."""
        flow = make_flow()
        flow.add_routine(TwoSlots(), "r")
        flow.set_error_handler(ErrorHandler("continue"))
        assert flow.execute("r").status == "completed"

    @pytest.mark.parametrize(
        ("slots", "expected"),
        [(("trigger", "input"), "trigger"), (("x", "input"), "input"), (("only",), "only")],
    )
    def test_default_entry_slot(
        self, make_flow: Any, slots: tuple[str, ...], expected: str
    ) -> None:
        """Without entry_slot, the entry data goes to 'trigger', else 'input', else the
        routine's only slot: as the command line and the job stores choose."""
        seen: list[str] = []

        class Slots(Routine):
            def __init__(self) -> None:
                super().__init__()
                for name in slots:
                    self.define_slot(name, handler=lambda name=name, **_: seen.append(name))

        flow = make_flow()
        flow.add_routine(Slots(), "s")
        assert "completed" == flow.execute("s", {"v": 1}).status
        assert [expected] == seen
        assert [expected] == [s for s in slots if s == default_entry_slot(Slots())]

    def test_execution_strategy_argument_is_per_job(self, make_flow: Any) -> None:
        """The execute argument applies to that job only."""
        flow = make_flow()
        chain(flow, 2)
        assert flow.execute("e", execution_strategy="concurrent").status == "completed"
        assert flow.execution_strategy == "sequential"

    def test_output_handler_and_job_state_arguments(self, make_flow: Any) -> None:
        """execute uses the given JobState and output handler."""
        seen: list[Any] = []

        class Out(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=lambda **_: self.send_output("o", n=1))

        flow = make_flow(flow_id="f")
        flow.add_routine(Out(), "o")
        from routilux import CallbackOutputHandler

        js = JobState("f")
        js.update_shared_data("preset", True)
        result = flow.execute(
            "o", job_state=js, output_handler=CallbackOutputHandler(lambda *a: seen.append(a))
        )
        assert result is js and js.shared_data["preset"] is True
        assert seen[0][:4] == (js.job_id, "o", "o", {"n": 1})

    def test_job_state_of_other_flow_rejected(self, make_flow: Any) -> None:
        """A JobState of another flow raises FlowMismatchError ("does not match")."""
        flow = make_flow(flow_id="a")
        chain(flow, 1)
        with pytest.raises(FlowMismatchError, match="does not match"):
            flow.execute("e", job_state=JobState("b"))

    def test_flow_is_not_mutated_and_keeps_no_job(self, make_flow: Any) -> None:
        """Running a job leaves the definition alone; the flow has no job_state."""
        flow = make_flow()
        chain(flow, 2)
        before = (dict(flow.routines), list(flow.connections))
        flow.execute("e", {"value": 1})
        assert before == (dict(flow.routines), list(flow.connections))
        assert not hasattr(flow, "job_state")

    def test_execution_tracker_is_latest_job(self, make_flow: Any) -> None:
        """flow.execution_tracker is the tracker of the latest job; each job has its own."""
        flow = make_flow()
        chain(flow, 1)
        assert flow.execution_tracker is None
        a = flow.execute("e")
        b = flow.execute("e")
        assert flow.execution_tracker is b.execution_tracker
        assert a.execution_tracker is not b.execution_tracker
        assert a.execution_tracker.routine_executions["r0"]

    def test_timeout_returns_running_job(self, make_flow: Any) -> None:
        """With a timeout, execute returns the running job; it completes later."""
        flow = make_flow(execution_strategy="concurrent")
        gate = Gate()
        flow.add_routine(gate, "g")
        js = flow.execute("g", timeout=0.05)
        assert js.status == "running"
        gate.release.set()
        assert js.wait_for_completion(10) and js.status == "completed"


class TestResources:
    def test_flow_dropped_without_shutdown_stops_its_threads(self) -> None:
        """A flow nobody refers to any more (shutdown never called) stops its worker pool
        and its retry timer when it is collected: no thread is left behind."""

        class FailsOnce(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("input", handler=self.take)
                self.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=0.01))

            def take(self, value: Any = None, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                if ctx.job_state.modify_shared_data("calls", lambda n: n + 1, 0) == 1:
                    raise RuntimeError("once")

        def run_and_drop() -> list[threading.Thread]:
            flow = Flow(execution_strategy="concurrent", max_workers=3)
            flow.add_routine(Emitter(), "e")
            flow.add_routine(FailsOnce(), "f")
            flow.connect("e", "out", "f", "input")
            js = flow.execute("e", {"items": [1, 2, 3]})
            assert (js.status, js.shared_data["calls"]) == ("completed", 4)
            assert flow._executor is not None and flow._timer is not None
            threads = [*flow._executor._threads, flow._timer._thread]
            assert all(t is not None and t.is_alive() for t in threads)
            return threads  # type: ignore[return-value]

        threads = run_and_drop()
        gc.collect()
        for thread in threads:
            thread.join(10)
        assert [t.name for t in threads if t.is_alive()] == []


class TestRunningReportedHonestly:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_blocked_downstream_is_running(self, make_flow: Any, strategy: str) -> None:
        """A job whose handler is blocked is running, however long it takes."""
        flow = make_flow(execution_strategy=strategy, max_workers=2)
        flow.add_routine(Emitter(), "e")
        gate = Gate()
        flow.add_routine(gate, "g")
        flow.connect("e", "out", "g", "input")
        js = flow.submit("e")
        assert gate.entered.wait(10)
        assert js.status == "running"
        assert not js.wait_for_completion(timeout=0.05)
        assert js.status == "running"
        gate.release.set()
        assert js.wait_for_completion(timeout=10)
        assert js.status == "completed"


class TestConcurrency:
    def test_many_threads_share_one_flow(self, make_flow: Any) -> None:
        """8 threads x 250 executes: every job completed, with only its own records."""
        flow = make_flow(flow_id="shared", execution_strategy="concurrent", max_workers=4)
        chain(flow, 2)
        results: dict[int, list[JobState]] = {}
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                results[n] = [flow.execute("e", {"value": (n, i)}) for i in range(250)]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors
        jobs = [js for batch in results.values() for js in batch]
        assert len(jobs) == 2000 and len({js.job_id for js in jobs}) == 2000
        for n, batch in results.items():
            for i, js in enumerate(batch):
                assert js.status == "completed"
                assert [e["value"] for e in js.shared_log] == [(n, i), (n, i)]
                assert [r.event_name for r in js.execution_history] == [
                    "start",
                    "out",
                    "out",
                    "out",
                    "completed",
                ]

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_append_slot_isolated_per_job(self, make_flow: Any, strategy: str) -> None:
        """An append slot in two concurrent jobs sees each job's own data only."""
        seen: dict[str, list[Any]] = {}
        lock = threading.Lock()
        flow = make_flow(execution_strategy=strategy, max_workers=4)
        flow.add_routine(Emitter(), "e")
        collector = Routine()

        def collect(value: Any = None, **_: Any) -> None:
            ctx = collector.get_execution_context()
            assert ctx is not None
            with lock:
                seen[ctx.job_state.job_id] = list(value)

        collector.define_slot("input", handler=collect, merge_strategy="append")
        flow.add_routine(collector, "c")
        flow.connect("e", "out", "c", "input")
        a = flow.submit("e", {"items": ["a1", "a2", "a3"]})
        b = flow.submit("e", {"items": ["b1", "b2"]})
        assert a.wait_for_completion(10) and b.wait_for_completion(10)
        assert sorted(seen[a.job_id]) == ["a1", "a2", "a3"]
        assert sorted(seen[b.job_id]) == ["b1", "b2"]
        assert collector.get_slot("input")._data == {}

    def test_concurrent_fan_out_runs_in_parallel(self, make_flow: Any) -> None:
        """Fan-out branches of one job run at the same time in a concurrent flow."""
        flow = make_flow(execution_strategy="concurrent", max_workers=3)
        flow.add_routine(Emitter(), "e")
        barrier = threading.Barrier(3, timeout=10)
        for name in ["a", "b", "c"]:
            r = Routine()
            r.define_slot("input", handler=lambda **_: barrier.wait())
            flow.add_routine(r, name)
            flow.connect("e", "out", name, "input")
        js = flow.execute("e")
        assert js.status == "completed"
        assert {js.routine_states[n]["status"] for n in "abc"} == {"completed"}

    def test_wait_for_completion_of_flow(self, make_flow: Any) -> None:
        """flow.wait_for_completion waits for every running job of the flow."""
        flow = make_flow(execution_strategy="concurrent", max_workers=2)
        gate = Gate()
        flow.add_routine(gate, "g")
        js = flow.submit("g")
        assert gate.entered.wait(10)
        assert not flow.wait_for_completion(timeout=0.05)
        gate.release.set()
        assert flow.wait_for_completion(timeout=10)
        assert js.status == "completed"

    def test_shutdown_releases_threads(self) -> None:
        """shutdown() joins the workers and the timer; a later job makes a new pool."""

        def mine() -> list[str]:
            return [
                t.name
                for t in threading.enumerate()
                if t.name.startswith(("shutdown-test", "routilux-timer-shut"))
            ]

        flow = Flow(
            "shut",
            execution_strategy="concurrent",
            max_workers=3,
            thread_name_prefix="shutdown-test",
        )
        chain(flow, 3)
        flow.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=0))
        flow.execute("e", {"items": list(range(20))})
        assert mine()
        flow.shutdown()
        assert [] == mine()
        assert flow.execute("e").status == "completed"
        flow.shutdown()
        assert [] == mine()

    def test_context_manager_shuts_down(self) -> None:
        """Leaving a with-block releases the pool."""
        with Flow(execution_strategy="concurrent", thread_name_prefix="ctx-test") as flow:
            chain(flow, 1)
            flow.execute("e")
        assert not [t for t in threading.enumerate() if t.name.startswith("ctx-test")]


class TestEntrySlotAndCheckpoints:
    def test_entry_slot(self, make_flow: Any) -> None:
        """entry_slot starts a job at another slot than trigger (e.g. a routine's input)."""
        flow = make_flow()
        chain(flow, 2)
        js = flow.execute("r0", {"value": 9}, entry_slot="input")
        assert js.status == "completed"
        assert [e["value"] for e in js.shared_log] == [9, 9]
        missing = flow.execute("r0", entry_slot="nope")
        assert missing.status == "failed"
        assert "no 'nope' slot" in missing.routine_states["r0"]["error"]

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_execute_returns_after_final_checkpoint(self, make_flow: Any, strategy: str) -> None:
        """execute and wait_for_completion return only once the final checkpoint is written."""
        written: list[str] = []
        entered = threading.Event()

        def checkpoint(job_state: JobState, snapshot: dict[str, Any]) -> None:
            if snapshot["status"] == "completed":
                entered.set()
                written.append(snapshot["status"])

        flow = make_flow(execution_strategy=strategy, max_workers=2)
        chain(flow, 3)
        js = flow.execute("e", {"items": [1, 2]}, checkpoint=checkpoint, checkpoint_every=2)
        assert ["completed"] == written
        assert js.wait_for_completion(5)
        snapshots: list[dict[str, Any]] = []
        js2 = flow.submit("e", {"items": [1]}, checkpoint=lambda j, s: snapshots.append(s))
        assert js2.wait_for_completion(10)
        assert snapshots[-1]["status"] == "completed"


class TestRunOptions:
    def test_keyword_types_list_the_options(self) -> None:
        """The keyword-argument types of the run methods name exactly the options."""
        from routilux.engine._options import (
            REOPEN_OPTIONS,
            RUN_OPTIONS,
            ReopenKwargs,
            RunKwargs,
        )

        assert RUN_OPTIONS == RunKwargs.__optional_keys__
        assert REOPEN_OPTIONS == ReopenKwargs.__optional_keys__

    @pytest.mark.parametrize("method", ["execute", "submit"])
    def test_unknown_option_is_a_type_error(self, make_flow: Any, method: str) -> None:
        """An unknown keyword argument raises TypeError naming the method and the name."""
        flow = make_flow()
        chain(flow, 1)
        with pytest.raises(
            TypeError, match=rf"{method}\(\) got an unexpected keyword argument 'nope'"
        ):
            getattr(flow, method)("e", nope=1)

    def test_resume_takes_only_the_reopen_options(self, make_flow: Any) -> None:
        """resume and retry refuse the options that only start a job (entry_slot...)."""
        flow = make_flow()
        chain(flow, 1)
        js = flow.execute("e", {"items": [1]})
        with pytest.raises(TypeError, match="resume"):
            flow.resume(js, entry_slot="input")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="retry"):
            flow.retry(js, job_state=js)  # type: ignore[call-arg]

    def test_strategy_positional_or_keyword(self, make_flow: Any) -> None:
        """execution_strategy is the third positional argument, or a keyword."""
        flow = make_flow()
        chain(flow, 2)
        assert "completed" == flow.execute("e", {"items": [1]}, "concurrent").status
        assert (
            "completed" == flow.execute("e", {"items": [1]}, execution_strategy="concurrent").status
        )
        js = flow.submit("e", {"items": [1]}, "concurrent")
        assert js.wait_for_completion(10)
        assert "completed" == js.status

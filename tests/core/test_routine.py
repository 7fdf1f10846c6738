"""
Routine: declaration, config, emit, execution context, outputs and deferred events.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from routilux import Connection, Flow, JobState, Routine
from routilux.exceptions import (
    DuplicateNameError,
    EventNotFoundError,
    ExecutionContextError,
)


class TestDeclaration:
    def test_duplicate_slot_and_event(self) -> None:
        """A name can be declared once per routine."""
        r = Routine()
        r.define_slot("s")
        r.define_event("e")
        with pytest.raises(DuplicateNameError, match="Slot 's'"):
            r.define_slot("s")
        with pytest.raises(DuplicateNameError, match="Event 'e'"):
            r.define_event("e")

    def test_lookups(self) -> None:
        """get_slot/get_event return None for unknown names."""
        r = Routine()
        s, e = r.define_slot("s"), r.define_event("e", ["x"])
        assert (r.get_slot("s"), r.get_event("e"), r.get_slot("x"), r.get_event("x")) == (
            s,
            e,
            None,
            None,
        )
        assert e.output_params == ["x"]

    def test_config(self) -> None:
        """config() is a shallow copy; set/get work on the routine's config."""
        r = Routine()
        assert r.config() == {}
        r.set_config(a=1, b={"c": 2})
        copy = r.config()
        copy["a"] = 99
        assert r.get_config("a") == 1 and r.get_config("zz", 5) == 5

    def test_repr_and_id(self) -> None:
        """The generated id is unique and shows in the repr."""
        a, b = Routine(), Routine()
        assert a._id != b._id and repr(a) == f"Routine[{a._id}]"


class TestExtractInputData:
    @pytest.mark.parametrize(
        ("args", "kwargs", "expected"),
        [
            ((0,), {}, 0),
            (("",), {}, ""),
            ((), {"data": None, "x": 1}, 1),  # data=None counts as not given
            ((), {"data": 5, "x": 1}, 5),
            ((), {"only": 3}, 3),
            ((), {"a": 1, "b": 2}, {"a": 1, "b": 2}),
            ((), {}, {}),
        ],
    )
    def test_rules(self, args: tuple[Any, ...], kwargs: dict[str, Any], expected: Any) -> None:
        """data first, then kwargs["data"], the only value, all kwargs, or {}."""
        assert expected == Routine()._extract_input_data(*args, **kwargs)


class TestEmitOutsideJobs:
    def test_unknown_event(self) -> None:
        """Emitting an undeclared event raises EventNotFoundError, a ValueError."""
        with pytest.raises(EventNotFoundError, match="Event 'x' does not exist"):
            Routine().emit("x")

    def test_standalone_delivery_is_synchronous_without_mapping(self) -> None:
        """Without a job, connected slots receive at once, in order, unmapped."""
        got: list[Any] = []
        a, b = Routine(), Routine()
        ev = a.define_event("e")
        s1 = b.define_slot("s1", lambda **kw: got.append(("s1", kw)))
        s2 = b.define_slot("s2", lambda **kw: got.append(("s2", kw)))
        Connection(ev, s1, {"x": "y"})
        ev.connect(s2)
        a.emit("e", x=1)
        assert got == [("s1", {"x": 1}), ("s2", {"x": 1})]

    def test_connection_activate_maps(self) -> None:
        """Connection.activate applies the mapping and delivers."""
        got: list[Any] = []
        slot = Routine().define_slot("s", lambda **kw: got.append(kw))
        Connection(Routine().define_event("e"), slot, {"a": "b"}).activate({"a": 1})
        assert got == [{"b": 1, "a": 1}]


class TestContextRequired:
    @pytest.mark.parametrize(
        "call",
        [
            lambda r: r.send_output("t", a=1),
            lambda r: r.emit_deferred_event("e", a=1),
        ],
    )
    def test_outside_job(self, call: Any) -> None:
        """send_output and emit_deferred_event need a running job."""
        r = Routine()
        assert r.get_execution_context() is None
        with pytest.raises(ExecutionContextError, match="execution context"):
            call(r)

    def test_context_inside_job(self) -> None:
        """Inside a handler the context names the flow, job and flow routine id."""
        seen: list[Any] = []

        class R(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.run)

            def run(self, **_: Any) -> None:
                ctx = self.get_execution_context()
                flow, js, rid = ctx
                seen.append(
                    (
                        flow,
                        js.job_id,
                        rid,
                        ctx.idempotency_key,
                        self._current_flow,
                        flow._current_execution_job_state.value,
                    )
                )

        flow = Flow()
        r = R()
        flow.add_routine(r, "me")
        js = flow.execute("me")
        assert seen == [(flow, js.job_id, "me", f"{js.job_id}:0", flow, js)]
        assert r.get_execution_context() is None
        assert flow._current_execution_job_state.value is None

    def test_job_assigned_by_hand_gives_a_context(self) -> None:
        """Code outside a job may set flow._current_execution_job_state.value, as with the
        original's thread-local: the flow's routines then reach that job, in that thread only."""
        flow = Flow(flow_id="f")
        r = Routine()
        r.define_event("later", ["x"])
        flow.add_routine(r, "r")
        js = JobState("f")
        flow._current_execution_job_state.value = js
        try:
            assert tuple(r.get_execution_context()) == (flow, js, "r")
            r.emit_deferred_event("later", x=1)
            r.send_output("note", text="hi")
            other: list[Any] = []
            t = threading.Thread(target=lambda: other.append(r.get_execution_context()))
            t.start()
            t.join(10)
            assert other == [None]
            assert Routine().get_execution_context() is None  # not in the flow
        finally:
            flow._current_execution_job_state.value = None
        assert r.get_execution_context() is None
        assert [(e["routine_id"], e["event_name"], e["data"]) for e in js.deferred_events] == [
            ("r", "later", {"x": 1})
        ]
        assert [(o["routine_id"], o["output_type"], o["data"]) for o in js.output_log] == [
            ("r", "note", {"text": "hi"})
        ]

    def test_routine_in_two_flows_sees_the_running_one(self) -> None:
        """_current_flow is the flow of the job that runs now, not the last one added."""
        seen: list[Any] = []

        class R(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=lambda **_: seen.append(self._current_flow))

        r = R()
        f1, f2 = Flow(), Flow()
        f1.add_routine(r, "a")
        f2.add_routine(r, "b")
        f1.execute("a")
        assert seen == [f1]


def test_call_is_a_no_op() -> None:
    """The deprecated __call__ does nothing."""
    assert Routine()() is None


def test_source_routine_id() -> None:
    """ctx.source_routine_id names the routine whose event delivered the activation."""
    from helpers import Emitter

    seen: list[Any] = []
    flow = Flow()
    flow.add_routine(Emitter(), "e")
    sink = Routine()
    sink.define_slot(
        "input", lambda **_: seen.append(sink.get_execution_context().source_routine_id)
    )
    flow.add_routine(sink, "s")
    flow.connect("e", "out", "s", "input")
    flow.execute("e")
    assert ["e"] == seen

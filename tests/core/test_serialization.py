"""
Serialization: round trips of flows and jobs, what the original lost, safe loading of
hostile and malformed documents, and the callable and exception registries.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import Sink, Source, double, flows, job_states, keep_last, shout

from routilux import ErrorHandler, ExecutionTracker, Flow, JobState, Routine, Slot
from routilux.connection import Connection
from routilux.exceptions import DeserializationError, RegistryError, SerializationError
from routilux.job_state import ExecutionRecord
from routilux.registry import register_routine, unregister_routine
from routilux.serialization import (
    FORMAT_VERSION,
    callable_name,
    dump_job_state,
    dump_tracker,
    exception_name,
    get_callable,
    get_exception,
    make_converter,
    register_callable,
    register_exception,
    unregister_callable,
)


def json_trip(data: Any) -> Any:
    """What another process reads back."""
    return json.loads(json.dumps(data))


def load_flow(data: Any) -> Flow:
    flow = Flow()
    flow.deserialize(data)
    return flow


def load_job(data: Any) -> JobState:
    js = JobState()
    js.deserialize(data)
    return js


def flow_doc(**changes: Any) -> dict[str, Any]:
    """A small valid flow document, with top-level changes."""
    flow = Flow(flow_id="doc")
    flow.add_routine(Source(), "src")
    flow.add_routine(Sink(), "dst")
    flow.connect("src", "out", "dst", "input")
    data = json_trip(flow.serialize())
    data.update(changes)
    return data


class CustomError(Exception):
    """A user exception class (module level)."""


class Pinger(Routine):
    """A routine class that is registered by the tests that need it."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.ping)
        self.define_event("pong", ["n"])

    def ping(self, **_: Any) -> None:
        """Do nothing."""


@pytest.fixture
def pinger() -> Iterator[type[Pinger]]:
    register_routine(Pinger, name="tests.Pinger")
    yield Pinger
    unregister_routine("tests.Pinger")


class TestFlowRoundTrip:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(flows())
    def test_round_trip(self, flow: Flow) -> None:
        """Serialize, JSON, deserialize and serialize again gives the same document."""
        data = flow.serialize()
        text = json.dumps(data)
        loaded = load_flow(json.loads(text))
        assert data == loaded.serialize()
        assert flow.flow_id == loaded.flow_id
        assert flow.execution_strategy == loaded.execution_strategy
        assert flow.max_workers == loaded.max_workers
        assert list(flow.routines) == list(loaded.routines)
        for rid, routine in flow.routines.items():
            other = loaded.routines[rid]
            assert type(routine) is type(other)
            assert rid == other._id
            assert routine._config == other._config
            assert list(routine._slots) == list(other._slots)
            for name, slot in routine._slots.items():
                assert slot.merge_strategy == other._slots[name].merge_strategy
                if isinstance(slot.handler, type(routine.serialize)):
                    assert slot.handler.__func__ is other._slots[name].handler.__func__
                    assert other._slots[name].handler.__self__ is other
                else:
                    assert slot.handler is other._slots[name].handler
        got = [
            (
                c.source_routine_id,
                c.source_event.name,
                c.target_routine_id,
                c.target_slot.name,
                c.param_mapping,
            )
            for c in loaded.connections
        ]
        want = [
            (
                c.source_routine_id,
                c.source_event.name,
                c.target_routine_id,
                c.target_slot.name,
                c.param_mapping,
            )
            for c in flow.connections
        ]
        assert want == got
        for conn in loaded.connections:
            assert (
                conn.source_event
                is loaded.routines[conn.source_routine_id]._events[conn.source_event.name]
            )
            assert (
                conn.target_slot
                is loaded.routines[conn.target_routine_id]._slots[conn.target_slot.name]
            )

    def test_document_shape(self) -> None:
        """A flow document has a format name, a version and plain routine type names."""
        data = flow_doc()
        assert "routilux.flow" == data["format"]
        assert FORMAT_VERSION == data["version"]
        assert "tests.strategies.Source" == data["routines"]["src"]["type"]
        assert {"method": "fire"} == data["routines"]["src"]["slots"][0]["handler"]
        assert [
            {
                "source_routine_id": "src",
                "source_event": "out",
                "target_routine_id": "dst",
                "target_slot": "input",
                "param_mapping": {},
            }
        ] == data["connections"]

    def test_fan_out_to_same_named_slots(self) -> None:
        """Connections keep their target routine ids (the original collapsed them)."""
        flow = Flow(flow_id="fan")
        flow.add_routine(Source(), "src")
        for rid in ("a", "b", "c"):
            flow.add_routine(Sink(), rid)
            flow.connect("src", "out", rid, "input", {"value": rid})
        loaded = load_flow(json_trip(flow.serialize()))
        assert ["a", "b", "c"] == [c.target_routine_id for c in loaded.connections]
        slots = loaded.routines["src"]._events["out"].connected_slots
        assert [loaded.routines[r]._slots["input"] for r in "abc"] == slots
        assert [{"value": r} for r in "abc"] == [c.param_mapping for c in loaded.connections]

    def test_connection_made_without_flow_connect(self) -> None:
        """A Connection built by hand serializes with its ends' routine ids; an end that
        belongs to no routine is named in the error."""
        src, dst = Source(), Sink()
        conn = Connection(src._events["out"], dst._slots["input"], {"value": "v"})
        data = json_trip(conn.serialize())
        assert (src._id, "out", dst._id, "input", {"value": "v"}) == (
            data["source_routine_id"],
            data["source_event"],
            data["target_routine_id"],
            data["target_slot"],
            data["param_mapping"],
        )
        loose = Connection(src._events["out"], Slot("free"))
        with pytest.raises(SerializationError, match="target_routine_id") as info:
            loose.serialize()
        assert info.value.path == "target_routine_id"

    def test_extra_slots_events_and_handlers(self) -> None:
        """Declared slots and events come back with method, callable or no handler."""
        source = Source()
        source.define_slot("by_method", source.other, keep_last)
        source.define_slot("by_callable", shout)
        source.define_slot("bare")
        source.define_event("extra", ["a", "b"])
        flow = Flow(flow_id="x")
        flow.add_routine(source, "s")
        loaded = load_flow(json_trip(flow.serialize())).routines["s"]
        assert Source.other is loaded._slots["by_method"].handler.__func__
        assert loaded is loaded._slots["by_method"].handler.__self__
        assert keep_last is loaded._slots["by_method"].merge_strategy
        assert shout is loaded._slots["by_callable"].handler
        assert loaded._slots["bare"].handler is None
        assert ["a", "b"] == loaded._events["extra"].output_params
        assert loaded._slots["trigger"].handler.__func__ is Source.fire

    def test_error_handlers_and_retryable_exceptions(self) -> None:
        """Flow and routine error handlers keep every setting, exceptions by name."""
        register_exception(CustomError, name="tests.CustomError")
        flow = Flow(flow_id="eh")
        flow.set_error_handler(
            ErrorHandler("retry", 5, 0.5, 3.0, (ValueError, CustomError), is_critical=True)
        )
        source = Source()
        source.set_as_optional()
        flow.add_routine(source, "s")
        data = json_trip(flow.serialize())
        assert ["ValueError", "tests.CustomError"] == data["error_handler"]["retryable_exceptions"]
        loaded = load_flow(data)
        eh = loaded.error_handler
        assert eh is not None
        assert ("retry", 5, 0.5, 3.0, True) == (
            eh.strategy.value,
            eh.max_retries,
            eh.retry_delay,
            eh.retry_backoff,
            eh.is_critical,
        )
        assert (ValueError, CustomError) == eh.retryable_exceptions
        assert "continue" == loaded.routines["s"]._error_handler.strategy.value

    def test_deserialize_does_not_mutate_input(self) -> None:
        """The caller's dict is left exactly as it was."""
        data = flow_doc()
        before = copy.deepcopy(data)
        load_flow(data)
        assert before == data

    def test_failed_load_leaves_flow_untouched(self) -> None:
        """A bad document changes nothing in the target flow."""
        flow = Flow(flow_id="keep")
        flow.add_routine(Source(), "s")
        data = flow_doc()
        data["connections"][0]["target_slot"] = "nope"
        with pytest.raises(DeserializationError) as info:
            flow.deserialize(data)
        assert "connections[0].target_slot" == info.value.path
        assert "keep" == flow.flow_id
        assert ["s"] == list(flow.routines)

    def test_routine_round_trip_standalone(self) -> None:
        """Routine.serialize/deserialize keep id, config and method handlers."""
        source = Source()
        source.set_config(a=1, fn=double)
        source.define_slot("extra", source.other)
        data = json_trip(source.serialize())
        assert "routilux.routine" == data["format"]
        other = Source()
        other.deserialize(data)
        assert source._id == other._id
        assert {"a": 1, "fn": double} == other._config
        assert other is other._slots["extra"].handler.__self__

    def test_routine_of_other_type(self) -> None:
        """A routine document of another type is refused."""
        data = json_trip(Source().serialize())
        with pytest.raises(DeserializationError, match=r"tests\.strategies\.Source") as info:
            Sink().deserialize(data)
        assert "type" == info.value.path

    def test_connection_standalone(self) -> None:
        """Connection.serialize/deserialize keep ids, names and mapping."""
        flow = Flow(flow_id="c")
        flow.add_routine(Source(), "s")
        flow.add_routine(Sink(), "t")
        conn = flow.connect("s", "out", "t", "input", {"value": "v"})
        data = json_trip(conn.serialize())
        other = Connection()
        other.deserialize(data)
        assert ("s", "out", "t", "input", {"value": "v"}) == (
            other.source_routine_id,
            other.source_event.name,
            other.target_routine_id,
            other.target_slot.name,
            other.param_mapping,
        )


class TestSerializeErrors:
    def test_lambda_in_config_names_path(self) -> None:
        """A lambda in the config fails at serialize time with the path to it."""
        flow = Flow(flow_id="l")
        source = Source()
        source.set_config(routes=[lambda d: True])
        flow.add_routine(source, "r1")
        with pytest.raises(SerializationError, match=r"routines\.r1\.config\.routes\[0\]") as info:
            flow.serialize()
        assert "routines.r1.config.routes[0]" == info.value.path

    def test_closure_handler(self) -> None:
        """A closure used as a slot handler is refused, not dropped."""

        def local(**_: Any) -> None:
            pass

        flow = Flow(flow_id="l")
        source = Source()
        source.define_slot("x", local)
        flow.add_routine(source, "r1")
        with pytest.raises(SerializationError, match="handler") as info:
            flow.serialize()
        assert "routines.r1.slots.x.handler" == info.value.path

    def test_lambda_merge_strategy(self) -> None:
        """A lambda merge strategy is refused."""
        source = Source()
        source.define_slot("x", None, lambda a, b: b)
        with pytest.raises(SerializationError) as info:
            source.serialize()
        assert "slots.x.merge_strategy" == info.value.path

    def test_unregistered_local_routine_class(self) -> None:
        """A routine class defined in a function and never registered cannot be written."""

        class LocalPinger(Pinger):
            pass

        flow = Flow(flow_id="u")
        flow.add_routine(LocalPinger(), "p")
        with pytest.raises(SerializationError, match="register_routine") as info:
            flow.serialize()
        assert "routines.p.type" == info.value.path

    def test_routine_class_that_needs_arguments(self) -> None:
        """A registered class whose constructor requires arguments cannot be rebuilt on
        load, so serializing it fails at once, naming the arguments."""

        class Named(Routine):
            def __init__(self, name: str, *, size: int, note: str = "") -> None:
                super().__init__()
                self.set_config(name=name, size=size)

        register_routine(Named, name="test_serialization.Named")
        try:
            flow = Flow(flow_id="n")
            flow.add_routine(Named("a", size=1), "x")
            with pytest.raises(SerializationError, match=r"requires name, size") as info:
                flow.serialize()
            assert "routines.x.type" == info.value.path
        finally:
            unregister_routine("test_serialization.Named")

    def test_module_level_class_name_taken(self, pinger: type[Pinger]) -> None:
        """A module-level class whose class name another class holds is refused clearly."""
        register_routine(Sink, name="Pinger2")
        try:
            Pinger2 = type("Pinger2", (Pinger,), {"__module__": __name__})
            globals()["Pinger2"] = Pinger2
            flow = Flow(flow_id="t")
            flow.add_routine(Pinger2(), "p")
            with pytest.raises(SerializationError, match="Pinger2") as info:
                flow.serialize()
            assert "routines.p.type" == info.value.path
        finally:
            globals().pop("Pinger2", None)
            unregister_routine("Pinger2")

    def test_serialize_config_hook(self, pinger: type[Pinger]) -> None:
        """A routine's serialize_config() is used instead of _config, and may refuse."""

        class Hooked(Pinger):
            def serialize_config(self) -> dict[str, Any]:
                if self._config.get("bad"):
                    msg = "route 'x' holds a lambda"
                    raise SerializationError(msg, path="config.routes.x")
                return {"from_hook": True}

        register_routine(Hooked, name="tests.Hooked")
        try:
            routine = Hooked()
            assert {"from_hook": True} == routine.serialize()["config"]
            routine.set_config(bad=True)
            with pytest.raises(SerializationError, match="route 'x'"):
                routine.serialize()
            flow = Flow(flow_id="h")
            flow.add_routine(routine, "r1")
            with pytest.raises(SerializationError, match="route 'x'") as info:
                flow.serialize()
            assert "routines.r1.config.routes.x" == info.value.path
        finally:
            unregister_routine("tests.Hooked")

    def test_deserialize_config_hook(self, pinger: type[Pinger]) -> None:
        """A routine's deserialize_config() receives the config and may refuse it."""

        class Checked(Pinger):
            def deserialize_config(self, config: dict[str, Any]) -> None:
                if "bad" in config:
                    msg = "bad route"
                    raise DeserializationError(msg, path="config.routes")
                self._config = {**config, "checked": True}

        register_routine(Checked, name="tests.Checked")
        try:
            flow = Flow(flow_id="h")
            flow.add_routine(Checked(), "r1")
            flow.routines["r1"].set_config(a=1)
            data = json_trip(flow.serialize())
            assert {"a": 1, "checked": True} == load_flow(data).routines["r1"]._config
            data["routines"]["r1"]["config"]["bad"] = 1
            with pytest.raises(DeserializationError, match="bad route") as info:
                load_flow(data)
            assert "routines.r1.config.routes" == info.value.path
        finally:
            unregister_routine("tests.Checked")

    def test_non_json_job_data(self) -> None:
        """A job holding a set fails at serialize time with the path."""
        js = JobState("f")
        js.update_shared_data("k", {"inner": {1, 2}})
        with pytest.raises(SerializationError) as info:
            js.serialize()
        assert "shared_data.k.inner" == info.value.path

    def test_non_json_history_data(self) -> None:
        """A bad history payload is located by index."""
        js = JobState("f")
        js.record_execution("a", "e", {"ok": 1})
        js.record_execution("a", "e", {"bad": object()})
        with pytest.raises(SerializationError) as info:
            js.serialize()
        assert "execution_history[1].data.bad" == info.value.path

    def test_local_exception_class(self) -> None:
        """An exception class defined in a function has no name."""

        class Local(Exception):
            pass

        with pytest.raises(SerializationError, match="register_exception"):
            ErrorHandler("retry", retryable_exceptions=(Local,)).serialize()


class TestJobStateRoundTrip:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(job_states())
    def test_round_trip(self, js: JobState) -> None:
        """Serialize, JSON, deserialize: every field comes back."""
        data = js.serialize()
        loaded = load_job(json.loads(json.dumps(data)))
        for field in (
            "flow_id",
            "job_id",
            "status",
            "current_routine_id",
            "routine_states",
            "pause_points",
            "pending_tasks",
            "deferred_events",
            "shared_data",
            "shared_log",
            "output_log",
            "metadata",
            "checkpoint",
            "created_at",
            "updated_at",
            "history_limit",
            "history_dropped",
        ):
            assert getattr(js, field) == getattr(loaded, field), field
        assert list(js.execution_history) == list(loaded.execution_history)
        assert data == loaded.serialize()

    def test_from_a_real_paused_job(self, make_flow: Any) -> None:
        """Pending tasks are stored under flow routine ids and come back unchanged."""

        @register_routine(name="tests.serialization.Pauser")
        class Pauser(Source):
            def fire(self, **_: Any) -> None:
                ctx = self.get_execution_context()
                self.emit("out", value=1)
                self.emit_deferred_event("out", value=0)
                ctx.flow.pause(ctx.job_state, reason="wait", checkpoint={"step": 1})

        try:
            flow = make_flow(flow_id="p")
            flow.add_routine(Pauser(), "entry")
            flow.add_routine(Sink(), "sink")
            flow.connect("entry", "out", "sink", "input")
            js = flow.execute("entry")
            assert "paused" == js.status
            data = json_trip(js.serialize())
            assert "sink" == data["pending_tasks"][0]["slot_routine_id"]
            loaded = load_job(data)
            assert js.pending_tasks == loaded.pending_tasks
            assert {"step": 1} == loaded.checkpoint
            assert "wait" == loaded.pause_points[0]["reason"]
        finally:
            unregister_routine("tests.serialization.Pauser")

    def test_save_and_load(self, tmp_path: Path) -> None:
        """save() writes UTF-8 JSON that load() reads back."""
        js = JobState("f")
        js.update_shared_data("名前", "値")
        js.record_execution("a", "start", {"x": 1})
        path = tmp_path / "deep" / "job.json"
        js.save(path)
        loaded = JobState.load(path)
        assert {"名前": "値"} == loaded.shared_data
        assert js.execution_history == loaded.execution_history
        assert "名前" in path.read_text(encoding="utf-8")

    def test_history_limit_kept(self) -> None:
        """A bounded history stays bounded after loading."""
        js = JobState("f", history_limit=2)
        for i in range(5):
            js.record_execution("a", "e", {"i": i})
        loaded = load_job(json_trip(js.serialize()))
        assert 2 == loaded.history_limit
        assert 3 == loaded.history_dropped
        loaded.record_execution("a", "e", {"i": 5})
        assert [4, 5] == [r.data["i"] for r in loaded.execution_history]

    def test_output_handler_kept_and_input_untouched(self) -> None:
        """Loading keeps the receiving job's output handler and never changes the dict."""
        js = JobState("f")
        js.record_execution("a", "e", {"nested": {"x": [1]}})
        data = json_trip(js.serialize())
        before = copy.deepcopy(data)
        target = JobState()
        sentinel = object()
        target.output_handler = sentinel  # type: ignore[assignment]
        target.deserialize(data)
        assert before == data
        assert sentinel is target.output_handler
        target.execution_history[0].data["nested"]["x"].append(2)
        assert before == data

    def test_legacy_type_document(self, tmp_path: Path) -> None:
        """The original library's {"_type": "JobState"} documents load."""
        legacy = {
            "_type": "JobState",
            "flow_id": "old",
            "job_id": "j1",
            "status": "invalid_status",
            "current_routine_id": "entry",
            "routine_states": {"entry": {"status": "completed"}},
            "execution_history": [
                {
                    "_type": "ExecutionRecord",
                    "routine_id": "entry",
                    "event_name": "start",
                    "data": {"a": 1},
                    "timestamp": "2024-05-01T10:00:00.123456",
                },
                {"_type": "ExecutionRecord", "routine_id": "entry", "event_name": "done"},
            ],
            "created_at": "2024-05-01T10:00:00",
            "updated_at": "2024-05-01T10:00:01",
            "pause_points": [],
            "pending_tasks": [],
            "deferred_events": [],
            "shared_data": {"k": "v"},
            "shared_log": [],
            "output_log": [],
        }
        path = tmp_path / "legacy.json"
        path.write_text(json.dumps(legacy), encoding="utf-8")
        js = JobState.load(path)
        assert ("old", "j1", "invalid_status") == (js.flow_id, js.job_id, js.status)
        assert datetime(2024, 5, 1, 10, 0, 0, 123456) == js.execution_history[0].timestamp
        assert {} == js.execution_history[1].data
        assert {"k": "v"} == js.shared_data

    def test_legacy_document_without_ids_keeps_the_receivers(self) -> None:
        """A {"_type": "JobState"} document lacking flow_id, job_id or status leaves the
        receiving JobState's values (the original's behaviour); ours requires them."""
        js = JobState("mine")
        js.status = "paused"
        mine = js.job_id
        js.deserialize({"_type": "JobState", "shared_data": {"k": 1}})
        assert ("mine", mine, "paused", {"k": 1}) == (
            js.flow_id,
            js.job_id,
            js.status,
            js.shared_data,
        )
        doc = js.serialize()
        del doc["job_id"]
        with pytest.raises(DeserializationError, match="job_id"):
            JobState().deserialize(doc)

    def test_record_and_tracker(self) -> None:
        """ExecutionRecord and ExecutionTracker load their own serialize() output."""
        record = ExecutionRecord("a", "e", {"x": 1})
        other = ExecutionRecord()
        other.deserialize(json_trip(record.serialize()))
        assert record == other
        tracker = ExecutionTracker("f")
        tracker.record_routine_start("a", {"p": 1})
        tracker.record_routine_end("a")
        tracker.record_event("a", "out", "b", {"v": 2})
        loaded = ExecutionTracker()
        loaded.deserialize(json_trip(tracker.serialize()))
        assert tracker.serialize() == loaded.serialize()

    def test_tracker_document(self) -> None:
        """A tracker serializes as a versioned routilux.execution_tracker document, through
        dump_tracker, and loads back (the original library's ``_type`` shape too)."""
        tracker = ExecutionTracker("f")
        tracker.record_routine_start("a", {"p": 1})
        tracker.record_routine_end("a", result={"r": [1, 2]})
        tracker.record_event("a", "out", "b", {"v": 2})
        doc = tracker.serialize()
        assert doc == dump_tracker(tracker)
        assert (doc["format"], doc["version"]) == ("routilux.execution_tracker", 1)
        assert "_type" not in doc
        assert json_trip(doc) == doc
        [run] = doc["routine_executions"]["a"]
        assert (run["params"], run["result"], run["status"]) == (
            {"p": 1},
            {"r": [1, 2]},
            "completed",
        )
        assert doc["event_flow"][0]["data"] == {"v": 2}
        run["params"]["p"] = 99  # a copy: the tracker is not changed
        assert tracker.routine_executions["a"][0]["params"] == {"p": 1}
        legacy = {
            "_type": "ExecutionTracker",
            **{k: v for k, v in doc.items() if k not in ("format", "version")},
        }
        for data in (doc, legacy):
            loaded = ExecutionTracker()
            loaded.deserialize(data)
            assert loaded.serialize() == doc
        with pytest.raises(DeserializationError, match="version"):
            ExecutionTracker().deserialize({**doc, "version": 2})

    def test_tracker_of_a_job(self) -> None:
        """The tracker of a finished job (bookings not yet read) serializes as a document."""
        flow = Flow("tf")
        flow.add_routine(Source(), "src")
        flow.add_routine(Sink(), "dst")
        flow.connect("src", "out", "dst", "input")
        with flow:
            js = flow.execute("src")
        tracker = js.execution_tracker
        assert tracker is not None
        doc = json_trip(tracker.serialize())
        assert doc["format"] == "routilux.execution_tracker"
        assert [r["status"] for r in doc["routine_executions"]["src"]] == ["completed"]
        loaded = ExecutionTracker()
        loaded.deserialize(doc)
        assert loaded.get_routine_performance("src") == tracker.get_routine_performance("src")

    def test_tracker_with_data_that_is_not_json(self) -> None:
        """Data that is not JSON is refused when the tracker is serialized, with its path."""
        tracker = ExecutionTracker("f")
        tracker.record_event("a", "out", "b", {"v": {1, 2}})
        with pytest.raises(SerializationError) as info:
            tracker.serialize()
        assert info.value.path == "event_flow[0].data.v"


MARKER_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

class Evil:
    pass

def run(*args, **kwargs):
    pathlib.Path({marker!r}).write_text("called")
"""


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """A module on sys.path that writes a marker file if anything imports it."""
    path = tmp_path / "marker.txt"
    (tmp_path / "evil_marker_mod.py").write_text(
        textwrap.dedent(MARKER_MODULE.format(marker=str(path)))
    )
    sys.path.insert(0, str(tmp_path))
    yield path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("evil_marker_mod", None)


class TestHostileDocuments:
    @pytest.mark.parametrize(
        "name",
        [
            "evil_marker_mod:Evil",
            "evil_marker_mod.Evil",
            "evil_marker_mod",
            "os:system",
            "os.system",
            "builtins:eval",
            "subprocess:Popen",
        ],
    )
    def test_routine_type_names(self, marker: Path, name: str) -> None:
        """A type name pointing at a module or os.system is unknown; nothing is imported."""
        data = flow_doc()
        data["routines"]["src"]["type"] = name
        with pytest.raises(DeserializationError, match="no routine class") as info:
            load_flow(data)
        assert "routines.src.type" == info.value.path
        assert not marker.exists()
        assert "evil_marker_mod" not in sys.modules

    @pytest.mark.parametrize("name", ["evil_marker_mod:run", "os:system", "os.system"])
    def test_callable_names(self, marker: Path, name: str) -> None:
        """Handlers, merge strategies, config values and exceptions resolve by registry only."""
        cases = [
            (
                ("routines", "src", "slots", 0, "handler"),
                {"callable": name},
                "routines.src.slots[0].handler.callable",
            ),
            (
                ("routines", "src", "slots", 0, "merge_strategy"),
                {"callable": name},
                "routines.src.slots[0].merge_strategy.callable",
            ),
            (
                ("routines", "src", "config"),
                {"f": {"$callable": name}},
                "routines.src.config.f.$callable",
            ),
            (
                ("routines", "src", "error_handler"),
                {"retryable_exceptions": [name]},
                "routines.src.error_handler.retryable_exceptions[0]",
            ),
        ]
        for keys, value, path in cases:
            data = flow_doc()
            target = data
            for key in keys[:-1]:
                target = target[key]
            target[keys[-1]] = value
            with pytest.raises(DeserializationError) as info:
                load_flow(data)
            assert path == info.value.path
        assert not marker.exists()
        assert "evil_marker_mod" not in sys.modules

    def test_method_name_is_not_an_arbitrary_attribute(self) -> None:
        """A handler "method" must be a function of the routine's own class."""
        for name in ("__init__", "__class__", "serialize", "emit", "_config", "nope"):
            data = flow_doc()
            data["routines"]["src"]["slots"][0]["handler"] = {"method": name}
            with pytest.raises(DeserializationError) as info:
                load_flow(data)
            assert "routines.src.slots[0].handler.method" == info.value.path

    def test_os_system_never_called(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Even with os.system reachable, loading a job naming it runs nothing."""
        called: list[Any] = []
        monkeypatch.setattr(os, "system", lambda *a: called.append(a))
        data = json_trip(JobState("f").serialize())
        data["format"] = "os:system"
        with pytest.raises(DeserializationError):
            load_job(data)
        data = flow_doc()
        data["routines"]["src"]["type"] = "os:system"
        with pytest.raises(DeserializationError):
            load_flow(data)
        assert [] == called


def job_doc(**changes: Any) -> dict[str, Any]:
    js = JobState("f")
    js.record_execution("a", "start", {"x": 1})
    data = json_trip(js.serialize())
    data.update(changes)
    return data


class TestMalformedDocuments:
    @pytest.mark.parametrize(
        ("changes", "path", "match"),
        [
            ({"format": "routilux.flowz"}, "format", "unknown format"),
            ({"version": 2}, "version", "unsupported version 2"),
            ({"version": "1"}, "version", "integer"),
            ({"flow_id": 5}, "flow_id", "string"),
            ({"max_workers": "5"}, "max_workers", "integer"),
            ({"max_workers": 10**12}, "max_workers", "between"),
            ({"max_workers": True}, "max_workers", "integer"),
            ({"execution_strategy": "parallel"}, "execution_strategy", "unknown"),
            ({"routines": []}, "routines", "dict"),
            ({"routines": {"a": "Routine"}}, "routines.a", r"object \(dict\), got 'Routine'"),
            ({"error_handler": "stop"}, "error_handler", r"object \(dict\), got 'stop'"),
            ({"error_handler": [1]}, "error_handler", r"object \(dict\)"),
            ({"connections": ["x"]}, "connections[0]", r"object \(dict\)"),
            ({"routines": {"a": {"config": {}}}}, "routines.a.type", "missing"),
            ({"routines": {"a": {"type": "Routine", "config": [1]}}}, "routines.a.config", "dict"),
            ({"routines": {"a": {"type": "Routine", "slots": "abc"}}}, "routines.a.slots", "list"),
            (
                {"routines": {"a": {"type": "Routine", "slots": [{"name": 1}]}}},
                "routines.a.slots[0].name",
                "string",
            ),
            (
                {"routines": {"a": {"type": "Routine", "error_handler": {"strategy": "boom"}}}},
                "routines.a.error_handler.strategy",
                "strategy",
            ),
            (
                {"routines": {"a": {"type": "Routine", "error_handler": {"retry_delay": 1e300}}}},
                "routines.a.error_handler.retry_delay",
                "between",
            ),
            (
                {"connections": [{"source_routine_id": "src"}]},
                "connections[0].source_event",
                "missing",
            ),
            (
                {
                    "connections": [
                        {
                            "source_routine_id": "zz",
                            "source_event": "out",
                            "target_routine_id": "dst",
                            "target_slot": "input",
                        }
                    ]
                },
                "connections[0].source_routine_id",
                "no routine",
            ),
        ],
    )
    def test_flow(self, changes: dict[str, Any], path: str, match: str) -> None:
        """Each malformed flow document names the bad field."""
        with pytest.raises(DeserializationError, match=match) as info:
            load_flow(flow_doc(**changes))
        assert path == info.value.path

    @pytest.mark.parametrize(
        ("changes", "path", "match"),
        [
            ({"format": "routilux.flow"}, "format", "unknown format"),
            ({"version": 99}, "version", "unsupported"),
            ({"job_id": None}, "job_id", "string"),
            ({"status": 3}, "status", "string"),
            ({"created_at": "yesterday"}, "created_at", "ISO"),
            ({"history_limit": 0}, "history_limit", "positive"),
            ({"shared_data": []}, "shared_data", "dict"),
            ({"shared_data": {"a": {"b": [1, object()]}}}, "shared_data.a.b[1]", "JSON"),
            ({"shared_log": [{}, 5]}, "shared_log[1]", "dict"),
            ({"routine_states": {"a": 1}}, "routine_states.a", "dict"),
            ({"execution_history": {}}, "execution_history", "list"),
            (
                {
                    "execution_history": [
                        {
                            "routine_id": "a",
                            "event_name": "e",
                            "data": {},
                            "timestamp": "2024-01-01T00:00:00",
                        },
                        7,
                    ]
                },
                "execution_history[1]",
                "dict",
            ),
            (
                {
                    "execution_history": [
                        {
                            "routine_id": "a",
                            "event_name": 1,
                            "data": {},
                            "timestamp": "2024-01-01T00:00:00",
                        }
                    ]
                },
                "execution_history[0].event_name",
                "string",
            ),
            (
                {
                    "execution_history": [
                        {
                            "routine_id": "a",
                            "event_name": "e",
                            "data": {"k": {1}},
                            "timestamp": "2024-01-01T00:00:00",
                        }
                    ]
                },
                "execution_history[0].data.k",
                "JSON",
            ),
            (
                {"execution_history": [{"routine_id": "a", "event_name": "e", "data": {}}]},
                "execution_history[0].timestamp",
                "missing",
            ),
            (
                {"pending_tasks": [{"slot_routine_id": "a", "data": {}}]},
                "pending_tasks[0].slot_name",
                "missing",
            ),
            (
                {
                    "pending_tasks": [
                        {"slot_routine_id": "a", "slot_name": "s", "data": {}, "seq": -1}
                    ]
                },
                "pending_tasks[0].seq",
                ">= 0",
            ),
            (
                {"deferred_events": [{"routine_id": "a", "event_name": "e", "data": 3}]},
                "deferred_events[0].data",
                "dict",
            ),
            ({"metadata": {"x": {"y": float}}}, "metadata.x.y", "JSON"),
        ],
    )
    def test_job_state(self, changes: dict[str, Any], path: str, match: str) -> None:
        """Each malformed job document names the bad field."""
        with pytest.raises(DeserializationError, match=match) as info:
            load_job(job_doc(**changes))
        assert path == info.value.path
        assert path in str(info.value)

    @pytest.mark.parametrize("data", [None, [], "x", 5, {"no": "format"}, {"_type": "Flow"}])
    def test_not_a_document(self, data: Any) -> None:
        """Anything that is not a job document is refused with a clear message."""
        with pytest.raises(DeserializationError):
            load_job(data)

    def test_deep_nesting(self) -> None:
        """Values nested beyond the limit are refused, not a RecursionError."""
        deep: Any = 1
        for _ in range(5000):
            deep = [deep]
        with pytest.raises(DeserializationError, match="nested") as info:
            load_job(job_doc(shared_data={"k": deep}))
        assert info.value.path.startswith("shared_data.k[0][0]")
        js = JobState("f")
        js.update_shared_data("k", deep)
        with pytest.raises(SerializationError, match="nested"):
            js.serialize()

    def test_huge_integer(self) -> None:
        """An integer too large to be written as JSON is refused."""
        with pytest.raises(DeserializationError, match="too large") as info:
            load_job(job_doc(metadata={"n": 10**10000}))
        assert "metadata.n" == info.value.path

    def test_error_is_a_value_error(self) -> None:
        """DeserializationError is a ValueError, as the original raised."""
        with pytest.raises(ValueError, match="version"):
            load_flow(flow_doc(version=0))

    def test_converter_is_not_global(self) -> None:
        """make_converter() returns a new converter each time."""
        assert make_converter() is not make_converter()


class TestCallableRegistry:
    def test_module_function_named_on_first_use(self) -> None:
        """A module-level function is registered as module:qualname when first written."""
        name = callable_name(json.dumps)
        assert "json:dumps" == name
        assert json.dumps is get_callable(name)

    def test_decorator_with_name(self) -> None:
        """register_callable works as a decorator, with or without a name."""

        @register_callable(name="tests.named")
        def named() -> None:
            pass

        try:
            assert named is get_callable("tests.named")
            assert "tests.named" == callable_name(named)
        finally:
            unregister_callable("tests.named")
        assert double is register_callable(double)
        assert double is get_callable("strategies:double")

    def test_local_function_needs_a_name(self) -> None:
        """A local function cannot be registered without a name."""
        with pytest.raises(RegistryError, match="name"):

            @register_callable
            def local() -> None:
                pass

    def test_lambda_needs_a_name(self) -> None:
        """A lambda has no name until registered explicitly."""
        func = lambda: None  # noqa: E731
        with pytest.raises(SerializationError, match="lambda"):
            callable_name(func)
        register_callable(func, name="tests.lambda")
        try:
            assert "tests.lambda" == callable_name(func)
        finally:
            unregister_callable("tests.lambda")

    def test_name_taken(self) -> None:
        """Two callables under one name are refused, naming both."""
        register_callable(double, name="tests.taken")
        try:
            with pytest.raises(RegistryError, match=r"double.*shout|shout.*double"):
                register_callable(shout, name="tests.taken")
        finally:
            unregister_callable("tests.taken")

    def test_unknown_name(self) -> None:
        """An unknown name is an error; nothing is imported."""
        with pytest.raises(RegistryError, match="register_callable"):
            get_callable("os:system")

    def test_exceptions(self) -> None:
        """Built-in exceptions are known by name; others by registration."""
        assert ValueError is get_exception("ValueError")
        assert "KeyError" == exception_name(KeyError)
        with pytest.raises(RegistryError):
            get_exception("tests.Nope")

    def test_dump_job_state_is_public(self) -> None:
        """The function behind JobState.serialize is importable."""
        assert "routilux.job_state" == dump_job_state(JobState("f"))["format"]

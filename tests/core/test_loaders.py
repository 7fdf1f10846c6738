"""
The codec's loaders that build new objects from documents (as cattrs' structure does), and
the model accessors the codec reads and restores objects through.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from strategies import Sink, Source, keep_last, shout

from routilux import ErrorHandler, ExecutionTracker, Flow, JobState, Routine, Slot
from routilux.codec._connections import load_connection
from routilux.codec._error_handlers import load_error_handler
from routilux.codec._flows import load_flow
from routilux.codec._history import load_record
from routilux.codec._job_states import load_job_state
from routilux.codec._routines import load_event, load_routine
from routilux.codec._slots import load_slot
from routilux.codec._tracker import load_tracker
from routilux.exceptions import DeserializationError
from routilux.job_state import ExecutionRecord
from routilux.model._definition import FlowDefinition
from routilux.output_handler import QueueOutputHandler


def json_trip(data: Any) -> Any:
    """What another process reads back."""
    return json.loads(json.dumps(data))


def small_flow() -> Flow:
    flow = Flow(flow_id="small", execution_strategy="concurrent", max_workers=3)
    flow.add_routine(Source(), "src")
    flow.add_routine(Sink(), "dst")
    flow.connect("src", "out", "dst", "input", {"value": "item"})
    flow.set_error_handler(ErrorHandler("retry", max_retries=2, retry_delay=0))
    return flow


def small_job() -> JobState:
    js = JobState("small", status="paused", history_limit=3)
    for i in range(5):
        js.record_execution("src", "out", {"i": i})
    js.update_shared_data("k", [1, {"a": None}])
    js.append_to_shared_log({"m": "x"})
    js.set_metadata("who", "me")
    return js


class TestNewObjects:
    def test_routine(self) -> None:
        """load_routine makes a new routine of the registered class, with the document's id."""
        source = Source()
        source.set_config(a=1)
        source.define_slot("extra", shout, keep_last)
        data = json_trip(source.serialize())
        loaded = load_routine(data)
        assert type(loaded) is Source
        assert source.get_id() == loaded.get_id()
        assert data == loaded.serialize()

    def test_routine_of_unknown_type(self) -> None:
        """An unknown type name is refused at ``type``."""
        data = json_trip(Routine().serialize())
        data["type"] = "tests.nope"
        with pytest.raises(DeserializationError) as info:
            load_routine(data)
        assert "type" == info.value.path

    def test_flow(self) -> None:
        """load_flow makes a FlowDefinition, or a runnable Flow when asked."""
        data = json_trip(small_flow().serialize())
        definition = load_flow(data)
        assert type(definition) is FlowDefinition
        assert data == definition.serialize()
        with load_flow(data, Flow) as flow:
            assert data == flow.serialize()
            assert "completed" == flow.execute("src", timeout=10).status

    def test_job_state(self) -> None:
        """load_job_state makes a new JobState that serializes as the document."""
        js = small_job()
        data = json_trip(js.serialize())
        loaded = load_job_state(data)
        assert loaded is not js
        assert data == loaded.serialize()
        assert 2 == loaded.history_dropped
        assert [3, 4] == [r.data["i"] for r in loaded.execution_history][-2:]

    def test_parts(self) -> None:
        """Slots, events, connections, error handlers, trackers and records come back new."""
        loaded_slot = load_slot(json_trip(Slot("input", None, shout, keep_last).serialize()))
        assert ("input", shout, keep_last) == (
            loaded_slot.name,
            loaded_slot.handler,
            loaded_slot.merge_strategy,
        )
        event = Source().get_event("out")
        assert event is not None
        assert ["value"] == load_event(json_trip(event.serialize())).output_params
        conn = small_flow().connections[0]
        loaded_conn = load_connection(json_trip(conn.serialize()))
        assert conn.serialize() == loaded_conn.serialize()
        eh = ErrorHandler("retry", max_retries=4, retryable_exceptions=(KeyError,))
        assert eh.serialize() == load_error_handler(json_trip(eh.serialize())).serialize()
        tracker = ExecutionTracker("f")
        tracker.record_routine_start("r", {"x": 1})
        tracker.record_routine_end("r")
        assert tracker.serialize() == load_tracker(json_trip(tracker.serialize())).serialize()
        record = ExecutionRecord("r", "out", {"x": 1}, datetime(2025, 1, 2, 3, 4, 5))
        assert record == load_record(json_trip(record.serialize()))

    def test_config_marker_at_the_top_is_refused(self) -> None:
        """A config that is a callable marker, not an object, is refused at its path."""
        data = json_trip(small_flow().serialize())
        data["routines"]["src"]["config"] = {"$callable": "tests.strategies.shout"}
        with pytest.raises(DeserializationError, match="must be an object") as info:
            load_flow(data)
        assert "routines.src.config" == info.value.path


class TestModelAccessors:
    def test_routine(self) -> None:
        """get_slots/get_events are copies; set_id and merge_config change the routine."""
        sink = Sink()
        slots = sink.get_slots()
        assert ["input"] == list(slots)
        slots.clear()
        assert ["input"] == list(sink.get_slots())
        assert {} == sink.get_events()
        sink.set_id("s1")
        assert "s1" == sink.get_id()
        sink.merge_config({"self": 1, "a": 2})
        assert {"self": 1, "a": 2} == sink.config()

    def test_job_state_restore_from(self) -> None:
        """restore_from takes over the other job's state; the output handler stays."""
        handler = QueueOutputHandler()
        js = JobState("other", output_handler=handler)
        fresh = load_job_state(json_trip(small_job().serialize()))
        js.restore_from(fresh)
        assert fresh.serialize() == js.serialize()
        assert handler is js.output_handler
        js.record_execution("src", "out", {"i": 5})
        assert [4, 5] == [r.data["i"] for r in js.execution_history][-2:]
        assert 3 == js.history_dropped

    def test_history_entries(self) -> None:
        """entries() gives the stored entries without making records of bookings."""
        js = small_job()
        entries = js.execution_history.entries()
        assert 3 == len(entries)
        assert [2, 3, 4] == [r.data["i"] for r in js.execution_history]

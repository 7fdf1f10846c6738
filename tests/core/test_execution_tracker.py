"""
ExecutionTracker: per-job records of activations and events, and their summaries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from helpers import chain

from routilux import ErrorHandler, ExecutionTracker, Flow, Routine


def test_initial_state() -> None:
    """A new tracker is empty."""
    t = ExecutionTracker("f")
    assert (t.flow_id, t.routine_executions, list(t.event_flow), t.performance_metrics) == (
        "f",
        {},
        [],
        {},
    )


def test_start_end_records() -> None:
    """End completes the last start record; an unknown routine's end does nothing."""
    t = ExecutionTracker("f")
    t.record_routine_start("r", {"p": 1})
    t.record_routine_end("r", "failed", result="x", error="boom")
    rec = t.routine_executions["r"][-1]
    assert (rec["params"], rec["status"], rec["result"], rec["error"]) == (
        {"p": 1},
        "failed",
        "x",
        "boom",
    )
    start = datetime.fromisoformat(rec["start_time"])
    end = datetime.fromisoformat(rec["end_time"])
    assert (end - start).total_seconds() == rec["execution_time"]
    t.record_routine_end("ghost")
    assert "ghost" not in t.routine_executions


def test_performance_summaries() -> None:
    """3 completed + 1 failed gives a 0.75 success rate; flow summary sums averages."""
    t = ExecutionTracker("f")
    for status in ["completed", "completed", "completed", "failed"]:
        t.record_routine_start("r")
        t.record_routine_end("r", status)
    perf = t.get_routine_performance("r")
    assert perf is not None
    assert (perf["total_executions"], perf["completed"], perf["failed"], perf["success_rate"]) == (
        4,
        3,
        1,
        0.75,
    )
    assert t.get_routine_performance("none") is None
    t.record_event("r", "e", "x", {"a": 1})
    flow_perf = t.get_flow_performance()
    assert (flow_perf["total_routines"], flow_perf["total_events"]) == (1, 1)
    assert ExecutionTracker().get_flow_performance() == {
        "total_routines": 0,
        "total_events": 0,
        "total_execution_time": 0,
        "avg_routine_time": 0,
    }


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_job_tracks_every_routine(strategy: str) -> None:
    """Each job's tracker has every routine's activations and every emitted event."""
    flow = Flow(execution_strategy=strategy)
    chain(flow, 2)
    js = flow.execute("e", {"items": [1, 2]})
    tracker = js.execution_tracker
    assert tracker is not None and tracker.flow_id == flow.flow_id
    assert {rid: len(v) for rid, v in tracker.routine_executions.items()} == {
        "e": 1,
        "r0": 2,
        "r1": 2,
    }
    events = [(e["source_routine_id"], e["target_routine_id"]) for e in tracker.event_flow]
    assert sorted(events) == sorted([("e", "r0")] * 2 + [("r0", "r1")] * 2 + [("r1", None)] * 2)
    assert tracker.get_routine_performance("r0")["success_rate"] == 1.0
    # The entry routine's record carries the entry parameters (record_routine_start's params).
    assert [r["params"] for r in tracker.routine_executions["e"]] == [{"items": [1, 2]}]
    assert [r["params"] for r in tracker.routine_executions["r0"]] == [{}, {}]
    flow.shutdown()


def test_failures_and_retries_are_tracked() -> None:
    """A retried activation shows its failed attempts, then its success."""
    calls: list[int] = []

    class Flaky(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.run)

        def run(self, **_: Any) -> None:
            calls.append(1)
            if len(calls) < 3:
                raise OSError("flaky")

    flow = Flow()
    r = Flaky()
    r.set_error_handler(ErrorHandler("retry", max_retries=5, retry_delay=0))
    flow.add_routine(r, "f")
    js = flow.execute("f")
    statuses = [rec["status"] for rec in js.execution_tracker.routine_executions["f"]]
    assert ["retrying", "retrying", "completed"] == statuses
    assert js.routine_states["f"]["retry_count"] == 2
    flow.shutdown()


class TestEventsAreBookedOnce:
    """A job's tracker shows the events its history records: each emit is booked once."""

    @staticmethod
    def _pairs(tracker: Any) -> list[tuple[str, str | None]]:
        return sorted((e["source_routine_id"], e["target_routine_id"]) for e in tracker.event_flow)

    def test_emit_is_one_history_record_the_tracker_shows(self) -> None:
        """The tracker's events are the history's emit records, with their targets."""
        flow = Flow()
        chain(flow, 1)
        js = flow.execute("e", {"items": [1]})
        emits = [r for r in js.execution_history if r.event_name == "out"]
        assert [("e", {"value": 1}), ("r0", {"value": 1})] == [
            (r.routine_id, r.data) for r in emits
        ]
        events = js.execution_tracker.event_flow
        assert [("e", "r0"), ("r0", None)] == [
            (e["source_routine_id"], e["target_routine_id"]) for e in events
        ]
        assert [r.timestamp.isoformat() for r in emits] == [e["timestamp"] for e in events]
        assert [{"value": 1}, {"value": 1}] == [e["data"] for e in events]

    def test_reading_the_history_first_keeps_the_events(self) -> None:
        """Records read (made into ExecutionRecords) before the tracker still count."""
        flow = Flow()
        chain(flow, 2)
        js = flow.execute("e", {"items": [1, 2]})
        assert len(list(js.execution_history)) > 0
        assert sorted([("e", "r0")] * 2 + [("r0", "r1")] * 2 + [("r1", None)] * 2) == self._pairs(
            js.execution_tracker
        )

    def test_new_run_of_a_job_tracks_its_own_events(self) -> None:
        """Executing a finished JobState again gives a tracker with the new run's events
        only; resuming a finished job keeps its tracker, which goes on."""
        flow = Flow()
        chain(flow, 1)
        js = flow.execute("e", {"items": [1]})
        first = js.execution_tracker
        flow.execute("e", {"items": [2, 3]}, job_state=js)
        assert js.execution_tracker is not first
        assert [1, 2, 3] == sorted(
            {e["data"]["value"] for t in (first, js.execution_tracker) for e in t.event_flow}
        )
        assert 4 == len(js.execution_tracker.event_flow)
        js.add_deferred_event("e", "out", {"value": 4})
        flow.resume(js)
        assert js.wait_for_completion(10)
        assert 6 == len(js.execution_tracker.event_flow)
        flow.shutdown()

    def test_replaced_history_keeps_the_events_seen(self) -> None:
        """Assigning the job's history keeps the tracker's events; later emits are added."""
        flow = Flow()
        chain(flow, 1)
        js = flow.execute("e", {"items": [1]})
        js.execution_history = []
        assert 2 == len(js.execution_tracker.event_flow)
        js.add_deferred_event("e", "out", {"value": 2})
        flow.resume(js)
        assert js.wait_for_completion(10)
        assert [1, 1, 2, 2] == [e["data"]["value"] for e in js.execution_tracker.event_flow]
        flow.shutdown()

    def test_bounded_history_bounds_the_events(self) -> None:
        """With a history limit the tracker shows the emits among the records kept."""
        flow = Flow(history_limit=5)
        chain(flow, 1)
        js = flow.execute("e", {"items": list(range(10))})
        kept = [r for r in js.execution_history if r.event_name == "out"]
        assert len(kept) == len(js.execution_tracker.event_flow) <= 5

    def test_emit_of_a_routine_outside_the_flow_is_tracked(self) -> None:
        """An event of a routine the flow does not hold is not in the history; the
        tracker books it (source ``""``)."""
        outside = Routine()
        out = outside.define_event("side", ["v"])

        class Fires(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", handler=self.go)

            def go(self, **_: Any) -> None:
                out.emit(v=1)

        flow = Flow()
        flow.add_routine(Fires(), "f")
        js = flow.execute("f")
        assert "completed" == js.status
        assert [("", "side")] == [
            (e["source_routine_id"], e["event_name"]) for e in js.execution_tracker.event_flow
        ]
        assert [] == [r for r in js.execution_history if r.event_name == "side"]

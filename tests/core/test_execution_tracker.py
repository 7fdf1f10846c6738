"""
ExecutionTracker: per-job records of activations and events, and their summaries.
"""

from __future__ import annotations

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
    assert rec["execution_time"] >= 0
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

"""
JobState's constructor, the time it says it last changed, and its bounded errors.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

from helpers import Emitter, within

from routilux import Flow, JobState, Routine


def test_constructor_takes_the_documented_fields_and_the_bounds_only_by_keyword() -> None:
    """JobState() takes the job's fields by position or keyword, its bounds, counters and
    companions only by keyword (so a positional call cannot shift into them), and none of
    its runtime parts (lock, condition, run, change listener)."""
    params = inspect.signature(JobState).parameters
    either = inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = inspect.Parameter.KEYWORD_ONLY
    assert [name for name, p in params.items() if p.kind is either] == [
        "flow_id",
        "job_id",
        "status",
        "current_routine_id",
        "routine_states",
        "execution_history",
        "pause_points",
        "pending_tasks",
        "deferred_events",
        "shared_data",
        "shared_log",
        "output_log",
        "metadata",
        "failed_tasks",
        "checkpoint",
        "created_at",
        "updated_at",
    ]
    assert {name for name, p in params.items() if p.kind is keyword} == {
        "history_limit",
        "history_dropped",
        "output_handler",
        "execution_tracker",
        "output_handler_failures",
        "checkpoint_seq",
        "errors",
    }


def test_a_booking_is_when_the_job_last_changed() -> None:
    """Recording a history entry makes updated_at the entry's time."""
    js = JobState("f", updated_at=datetime(2000, 1, 1))
    js.record_execution("a", "out", {"i": 1})
    assert js.execution_history[-1].timestamp == js.updated_at


class _Fails(Routine):
    """Raises for every value it receives (the job goes on: a downstream error)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        raise ValueError(f"bad {value}")


def test_errors_keep_the_last_history_limit_of_them() -> None:
    """With a history limit of 3, a job whose handler failed 2 times keeps both errors,
    and one that failed 5 times keeps the last 3."""
    flow = Flow("errors", "sequential", history_limit=3)
    flow.add_routine(Emitter(), "e")
    flow.add_routine(_Fails(), "f")
    flow.connect("e", "out", "f", "input")
    try:
        few = within(10, "execute to return", flow.execute, "e", {"items": [0, 1]})
        many = within(10, "execute to return", flow.execute, "e", {"items": [0, 1, 2, 3, 4]})
    finally:
        flow.shutdown(wait=True, timeout=3)
    assert ("completed", "completed") == (few.status, many.status)
    assert ["bad 0", "bad 1"] == [e.message for e in few.errors]
    assert ["bad 2", "bad 3", "bad 4"] == [e.message for e in many.errors]

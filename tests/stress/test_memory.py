"""
Bounded memory: a finished JobState does not keep its scheduler run alive, and a history
limit bounds a long job's history while counting what it dropped.

The tracemalloc figures (bytes per retained JobState, the ceiling of a 1,000,000
activation job) are measured by ``benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from routilux import Flow, JobState, Routine


WAIT = 10.0


class _Src(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.runs: list[weakref.ref[Any]] = []
        self.define_slot("trigger", self.go)
        self.define_event("out", ["x"])

    def go(self, n: int = 1) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        self.runs.append(weakref.ref(ctx.job_state._run))
        for i in range(n):
            self.emit("out", x=i)


class _Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", self.take, merge_strategy="append")
        self.define_event("again", ["x"])

    def take(self, x: Any) -> None:
        pass


def _flow(strategy: str = "sequential") -> tuple[Flow, _Src]:
    flow = Flow(execution_strategy=strategy, max_workers=2)
    src = _Src()
    flow.add_routine(src, "src")
    flow.add_routine(_Sink(), "sink")
    flow.connect("src", "out", "sink", "inp")
    return flow, src


class TestReleasedRuns:
    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    def test_finished_job_does_not_keep_its_run(self, strategy: str) -> None:
        """Once finished, a retained JobState no longer holds its JobRun (queues, caches)."""
        flow, src = _flow(strategy)
        kept = [flow.submit("src", {"n": 3}) for _ in range(5)]
        for js in kept:
            assert js.wait_for_completion(WAIT)
        assert flow.wait_for_completion(WAIT)
        flow.execute("src", {"n": 1})  # so flow.execution_tracker moves to another run
        flow.shutdown(wait=True, timeout=WAIT)
        gc.collect()
        alive = [ref for ref in src.runs[:5] if ref() is not None]
        assert alive == []
        for js in kept:
            assert js.status == "completed"
            assert js.execution_tracker is not None
            assert js.execution_tracker.routine_executions["sink"]
            assert js.wait_for_completion(0)

    def test_released_job_can_still_be_paused_resumed_cancelled(self) -> None:
        """Pause, resume and cancel keep working on a finished (released) job."""
        flow, _ = _flow("concurrent")
        js = flow.execute("src", {"n": 2}, timeout=WAIT)
        assert js.status == "completed"
        tracker = js.execution_tracker
        flow.pause(js, "after the end")
        assert js.status == "paused"
        assert not js.wait_for_completion(0)
        assert flow.resume(js) is js
        assert js.wait_for_completion(WAIT)
        assert js.status == "completed"
        assert js.execution_tracker is tracker
        flow.cancel(js, "done anyway")
        assert js.status == "cancelled"
        assert js.wait_for_completion(0)
        flow.shutdown(wait=True, timeout=WAIT)

    def test_resume_of_finished_job_with_deferred_event_runs_it(self) -> None:
        """A finished job given a deferred event runs it on resume, in a fresh run."""
        flow, _ = _flow("concurrent")
        js = flow.execute("src", {"n": 1}, timeout=WAIT)
        js.add_deferred_event("src", "out", {"x": 99})
        flow.resume(js)
        assert js.wait_for_completion(WAIT)
        assert js.status == "completed"
        assert js.routine_states["sink"]["status"] == "completed"
        events = [r.data for r in js.execution_history if r.event_name == "out"]
        assert {"x": 99} in events
        flow.shutdown(wait=True, timeout=WAIT)

    def test_resume_of_finished_job_keeps_its_merge_buffers(self) -> None:
        """An append slot's buffer survives the job's release: a resume appends to it."""

        class Collect(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("inp", self.take, merge_strategy="append")

            def take(self, x: list[int]) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                ctx.job_state.update_shared_data("seen", list(x))

        flow = Flow()
        flow.add_routine(_Src(), "src")
        flow.add_routine(Collect(), "sink")
        flow.connect("src", "out", "sink", "inp")
        js = flow.execute("src", {"n": 2})
        other = flow.execute("src", {"n": 1})
        assert js.shared_data["seen"] == [0, 1]
        js.add_deferred_event("src", "out", {"x": 99})
        flow.resume(js)
        assert js.wait_for_completion(WAIT)
        assert js.shared_data["seen"] == [0, 1, 99]
        assert other.shared_data["seen"] == [0]
        flow.shutdown(wait=True, timeout=WAIT)

    def test_execute_again_with_finished_job_state(self) -> None:
        """A finished JobState can be passed to execute again."""
        flow, src = _flow()
        js = flow.execute("src", {"n": 1})
        assert js.status == "completed"
        again = flow.execute("src", {"n": 2}, job_state=js)
        assert again is js
        assert js.status == "completed"
        assert 2 == len(src.runs), "the second execute did not run the entry routine again"
        flow.shutdown(wait=True, timeout=WAIT)


class TestHistoryLimit:
    def test_history_limit_bounds_and_counts(self) -> None:
        """A job with 5,000 records keeps the last N and counts the rest as dropped."""
        flow = Flow(history_limit=100)
        src = _Src()
        flow.add_routine(src, "src")
        flow.add_routine(_Sink(), "sink")
        flow.connect("src", "out", "sink", "inp")
        js = flow.execute("src", {"n": 5_000})
        assert js.status == "completed"
        assert len(js.execution_history) == 100
        total = 1 + 5_000 + 1  # start, one record per emit, completed
        assert js.history_dropped == total - 100
        assert js.execution_history[-1].event_name == "completed"
        flow.shutdown()

    def test_job_state_history_limit_direct(self) -> None:
        """JobState(history_limit=N) on its own: bounded, dropped counted exactly."""
        js = JobState("f", history_limit=10)
        for i in range(1_000):
            js.record_execution("r", "e", {"i": i})
        assert len(js.execution_history) == 10
        assert js.history_dropped == 990
        assert [r.data["i"] for r in js.execution_history] == list(range(990, 1_000))

"""
JobState and ExecutionRecord: the documented methods and their thread safety.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from routilux import ExecutionRecord, JobState, JobStatus, QueueOutputHandler
from routilux.exceptions import ConfigurationError, RoutiluxWarning
from routilux.output_handler import OutputHandler


class TestBasics:
    def test_defaults(self) -> None:
        """A new JobState is pending, empty, with a fresh job id."""
        js = JobState("f")
        assert (js.flow_id, js.status, js.current_routine_id) == ("f", "pending", None)
        for attr in ["routine_states", "shared_data", "metadata"]:
            assert getattr(js, attr) == {}
        for attr in [
            "execution_history",
            "pause_points",
            "pending_tasks",
            "deferred_events",
            "shared_log",
            "output_log",
        ]:
            assert list(getattr(js, attr)) == []
        assert js.job_id != JobState("f").job_id
        assert repr(js) == f"JobState[{js.job_id}:pending]"

    def test_status_is_plain_string(self) -> None:
        """Any string is kept; the enum values compare equal to the strings."""
        js = JobState()
        js.status = "invalid_status"
        assert js.status == "invalid_status"
        assert JobStatus.COMPLETED == "completed" and str(JobStatus.PAUSED) == "paused"

    def test_update_routine_state_replaces_and_get_returns_stored(self) -> None:
        """update_routine_state replaces with a copy; merge_routine_state merges."""
        js = JobState()
        state = {"a": 1}
        js.update_routine_state("r", state)
        state["a"] = 2
        assert js.get_routine_state("r") == {"a": 1}
        js.update_routine_state("r", {"b": 2})
        assert js.get_routine_state("r") == {"b": 2}
        assert js.merge_routine_state("r", {"c": 3}) == {"b": 2, "c": 3}
        assert js.get_routine_state("missing") is None

    def test_history_sorted_and_filtered(self) -> None:
        """get_execution_history copies, filters by routine and sorts by time."""
        js = JobState()
        now = datetime.now()
        js.execution_history.append(ExecutionRecord("b", "x", {}, now + timedelta(seconds=1)))
        js.execution_history.append(ExecutionRecord("a", "y", {}, now))
        js.record_execution("a", "z", {"k": 1})
        assert [r.event_name for r in js.get_execution_history()] == ["y", "z", "x"]
        assert [r.event_name for r in js.get_execution_history("a")] == ["y", "z"]

    def test_shared_data_and_log(self) -> None:
        """Shared data get/set/modify; the log stamps a copy and rejects non-dicts."""
        js = JobState()
        js.update_shared_data("k", 1)
        assert js.get_shared_data("k") == 1 and js.get_shared_data("x", 7) == 7
        assert js.modify_shared_data("n", lambda v: v + 1, 0) == 1
        entry = {"a": 1}
        js.append_to_shared_log(entry)
        assert "timestamp" not in entry and "timestamp" in js.shared_log[0]
        js.append_to_shared_log({"a": 2, "timestamp": "t"})
        assert js.get_shared_log(lambda e: e["a"] == 2) == [{"a": 2, "timestamp": "t"}]
        with pytest.raises(ConfigurationError, match="Entry must be a dictionary"):
            js.append_to_shared_log(["x"])  # type: ignore[arg-type]

    def test_send_output_forwards_and_logs(self) -> None:
        """send_output calls the handler with keywords and logs every output."""
        js = JobState()
        handler = QueueOutputHandler()
        js.set_output_handler(handler)
        js.send_output("r", "t", {"v": 1})
        item = handler.queue.get_nowait()
        assert (item["job_id"], item["routine_id"], item["output_type"], item["data"]) == (
            js.job_id,
            "r",
            "t",
            {"v": 1},
        )
        assert js.output_log[0]["data"] == {"v": 1}

    def test_failing_output_handler_warns_and_logs(self) -> None:
        """A raising output handler gives a RoutiluxWarning; the output is still logged."""

        class Bad(OutputHandler):
            def handle(self, *a: Any, **k: Any) -> None:
                raise RuntimeError("disk full")

        js = JobState()
        js.set_output_handler(Bad())
        with pytest.warns(RoutiluxWarning, match="Output handler failed: disk full"):
            js.send_output("r", "t", {})
        assert len(js.output_log) == 1

    def test_history_limit(self) -> None:
        """A history limit keeps the most recent records and counts the dropped ones."""
        js = JobState(history_limit=3)
        for i in range(10):
            js.record_execution("r", f"e{i}", {})
        assert [r.event_name for r in js.execution_history] == ["e7", "e8", "e9"]
        assert js.history_dropped == 7
        with pytest.raises(ConfigurationError):
            JobState(history_limit=0)

    def test_wait_for_completion_without_job(self) -> None:
        """A JobState never run reports whether its status is final."""
        assert JobState().wait_for_completion(0) is False
        done = JobState()
        done.status = "completed"
        assert done.wait_for_completion(0) is True


def test_record_repr_and_equality() -> None:
    """ExecutionRecord repr and value equality."""
    ts = datetime(2025, 1, 15, 10, 30)
    rec = ExecutionRecord("r", "e", None, ts)
    assert rec.data == {} and repr(rec) == "ExecutionRecord[r.e@2025-01-15 10:30:00]"
    assert rec == ExecutionRecord("r", "e", {}, ts)


def test_concurrent_writers_lose_nothing() -> None:
    """Threads writing every kind of state at once lose no update."""
    js = JobState()
    n_threads, n = 8, 500

    def writer(t: int) -> None:
        for i in range(n):
            js.record_execution(f"r{t}", "e", {"i": i})
            js.modify_shared_data("count", lambda v: v + 1, 0)
            js.append_to_shared_log({"t": t, "i": i})
            js.merge_routine_state(f"r{t}", {"last": i})
            js.send_output(f"r{t}", "o", {"i": i})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = n_threads * n
    assert (
        len(js.execution_history),
        js.shared_data["count"],
        len(js.shared_log),
        len(js.output_log),
    ) == (total, total, total, total)
    assert all(js.routine_states[f"r{t}"]["last"] == n - 1 for t in range(n_threads))


class TestContainersMadeOnUse:
    """shared_data, shared_log, metadata, output_log, pause_points, pending_tasks and
    deferred_events are made on first use; they behave as plain attributes."""

    NAMES = ["pause_points", "pending_tasks", "deferred_events", "shared_log", "output_log"]

    def test_given_values_are_kept_and_assignment_replaces(self) -> None:
        """Values given to the constructor are the attributes; assigning replaces them."""
        data = {"a": 1}
        js = JobState(shared_data=data, metadata={"m": 2}, shared_log=[{"x": 1}])
        assert js.shared_data is data
        assert (js.metadata, js.shared_log) == ({"m": 2}, [{"x": 1}])
        js.shared_data = {"b": 2}
        assert js.get_shared_data("b") == 2
        assert js.get_shared_data("a") is None

    @pytest.mark.parametrize("name", NAMES)
    def test_first_use_from_many_threads_makes_one_list(self, name: str) -> None:
        """Eight threads appending to a fresh JobState's list at once all land in it."""
        js = JobState()
        barrier = threading.Barrier(8)

        def append(t: int) -> None:
            barrier.wait(timeout=10)
            getattr(js, name).append({"t": t})

        threads = [threading.Thread(target=append, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(e["t"] for e in getattr(js, name)) == list(range(8))

    def test_unused_containers_serialize_empty(self) -> None:
        """A job that never used them serializes them as empty lists and dicts."""
        doc = JobState("f").serialize()
        assert [doc[name] for name in self.NAMES] == [[], [], [], [], []]
        assert (doc["shared_data"], doc["metadata"]) == ({}, {})

"""
AuditTrail: every JobState change recorded, and the JobState rebuilt from the records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from routilux import ExecutionRecord, Flow, JobState, PluginManager, Routine
from routilux_handlers import AuditTrail, read_audit_trail, rebuild_job_state


class Fan(Routine):
    """Entry: sets up shared data and metadata, then emits ``n`` items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 1, pause: bool = False, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data("total", 0)
        js.update_shared_data("config", {"mode": "fan", "limits": [1, 2]})
        js.set_metadata("tenant", "acme")
        self.emit_deferred_event("item", i=-1)
        for i in range(n):
            self.emit("item", i=i)
        if pause:
            ctx.flow.pause(js, reason="halfway", checkpoint={"n": n})


class Add(Routine):
    """Adds items into shared data from several workers; logs and outputs some."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.modify_shared_data("total", lambda v: v + i)
        js.modify_shared_data(f"bucket{i % 4}", lambda v: (v or []) + [i])
        js.merge_routine_state(ctx.routine_id, {f"seen_{i % 3}": True})
        if i % 5 == 0:
            js.append_to_shared_log({"i": i})
            self.send_output("five", i=i)
        if i == 13:
            raise ValueError("unlucky")


def build(pm: PluginManager, strategy: str = "concurrent") -> Flow:
    flow = Flow("audited", execution_strategy=strategy, max_workers=4, plugins=pm)
    flow.add_routine(Fan(), "fan")
    for k in range(3):
        flow.add_routine(Add(), f"add{k}")
        flow.connect("fan", "item", f"add{k}", "input")
    return flow


def snapshot(js: JobState) -> dict[str, Any]:
    """Everything an audit replay rebuilds."""
    return {
        "flow_id": js.flow_id,
        "job_id": js.job_id,
        "status": js.status,
        "entry": js.current_routine_id,
        "routine_states": js.routine_states,
        "shared_data": js.shared_data,
        "shared_log": js.shared_log,
        "metadata": js.metadata,
        "history": [(r.routine_id, r.event_name, r.timestamp) for r in js.get_execution_history()],
        "history_data": [r.data for r in js.execution_history if r.event_name != "error"],
        "output_log": js.output_log,
        "deferred_events": js.deferred_events,
        "pause_points": js.pause_points,
        "pending_tasks": js.pending_tasks,
        "checkpoint": js.checkpoint,
    }


@pytest.fixture
def pm() -> PluginManager:
    return PluginManager(load_entry_points=False)


class TestFileTrail:
    def test_rebuilds_concurrent_job_with_four_workers(
        self, tmp_path: Path, pm: PluginManager
    ) -> None:
        """After a 4-worker job, the replayed trail equals the real JobState."""
        audit = AuditTrail(tmp_path / "audit.jsonl")
        pm.register(audit)
        with build(pm) as flow:
            js = flow.execute("fan", {"n": 60})
        assert js.status == "completed"
        assert sum(range(60)) * 3 == js.shared_data["total"]
        rebuilt = audit.rebuild(js.job_id)
        assert snapshot(js) == snapshot(rebuilt)
        assert len([r for r in rebuilt.execution_history if r.event_name == "error"]) == 3

    def test_history_changed_by_hand_is_replayed(self, tmp_path: Path, pm: PluginManager) -> None:
        """A history a handler sorts, trims or extends by hand is rebuilt as it ends up."""

        class Edits(Routine):
            def __init__(self) -> None:
                super().__init__()
                self.define_slot("trigger", self.go)

            def go(self, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                history = ctx.job_state.execution_history
                ctx.job_state.record_execution(ctx.routine_id, "note", {"k": 1})
                history.sort(key=lambda r: r.event_name, reverse=True)
                del history[0]
                history.append(ExecutionRecord(ctx.routine_id, "added", {"k": 2}))

        audit = AuditTrail(tmp_path / "audit.jsonl")
        pm.register(audit)
        with Flow("edits", plugins=pm) as flow:
            flow.add_routine(Edits(), "e")
            js = flow.execute("e")
        assert [r.event_name for r in js.execution_history] == ["note", "added", "completed"]
        assert snapshot(js) == snapshot(audit.rebuild(js.job_id))

    def test_bounded_history_is_rebuilt_bounded(self, tmp_path: Path, pm: PluginManager) -> None:
        """A job with a history limit is rebuilt with the same records and dropped count."""
        audit = AuditTrail(tmp_path / "audit.jsonl")
        pm.register(audit)
        with Flow("bounded", history_limit=3, plugins=pm) as flow:
            flow.add_routine(Fan(), "fan")
            js = flow.execute("fan", {"n": 5})
        rebuilt = audit.rebuild(js.job_id)
        assert (len(rebuilt.execution_history), rebuilt.history_dropped) == (3, js.history_dropped)
        assert js.history_dropped > 0
        assert snapshot(js) == snapshot(rebuilt)

    def test_rebuilds_each_of_several_jobs(self, tmp_path: Path, pm: PluginManager) -> None:
        """Jobs running at once share one trail; each is rebuilt by its id."""
        audit = AuditTrail(tmp_path / "audit.jsonl")
        pm.register(audit)
        with build(pm) as flow:
            jobs = [flow.submit("fan", {"n": 20 + k}) for k in range(4)]
            assert flow.wait_for_completion(10)
        for js in jobs:
            assert snapshot(js) == snapshot(audit.rebuild(js.job_id))
        with pytest.raises(ValueError, match="4 jobs"):
            audit.rebuild()

    def test_pause_resume_deferred_and_pending(self, tmp_path: Path, pm: PluginManager) -> None:
        """Pause points, pending tasks and deferred events replay at pause and after resume."""
        path = tmp_path / "audit.jsonl"
        pm.register(AuditTrail(path))
        with build(pm, "sequential") as flow:
            js = flow.execute("fan", {"n": 4, "pause": True})
            assert js.status == "paused"
            at_pause = rebuild_job_state(read_audit_trail(path))
            assert snapshot(js) == snapshot(at_pause)
            assert len(at_pause.pending_tasks) == 12
            assert len(at_pause.deferred_events) == 1
            assert at_pause.checkpoint == {"n": 4}
            flow.resume(js)
            assert js.wait_for_completion(10)
        rebuilt = rebuild_job_state(read_audit_trail(path))
        assert (rebuilt.pending_tasks, rebuilt.deferred_events) == ([], [])
        assert snapshot(js) == snapshot(rebuilt)

    def test_records_are_plain_json(self, tmp_path: Path, pm: PluginManager) -> None:
        """Each line has job_id, flow_id, kind, key, routine_id, old, new and changed_at (and
        a job_started line the job's history_limit)."""
        audit = AuditTrail(tmp_path / "audit.jsonl")
        pm.register(audit)
        with build(pm, "sequential") as flow:
            js = flow.execute("fan", {"n": 1})
        records = audit.records(js.job_id)
        fields = {"job_id", "flow_id", "kind", "key", "routine_id", "old", "new", "changed_at"}
        assert all(
            fields | ({"history_limit"} if r["kind"] == "job_started" else set()) == set(r)
            for r in records
        )
        assert ("status", "running") == (records[0]["kind"], records[0]["new"])
        total = [r for r in records if r["kind"] == "shared_data" and r["key"] == "total"]
        assert [(r["old"], r["new"]) for r in total[:2]] == [(None, 0), (0, 0)]


class TestStructlogTrail:
    def test_rebuilds_from_captured_events(self, structlog_reset: None, pm: PluginManager) -> None:
        """Without a path, the records are structlog events, and those rebuild the job."""
        audit = AuditTrail()
        pm.register(audit)
        with capture_logs() as logs, build(pm) as flow:
            js = flow.execute("fan", {"n": 30})
        events = [e for e in logs if e["event"] == "routilux_job_state_changed"]
        assert events
        assert {e["job_id"] for e in events} == {js.job_id}
        assert snapshot(js) == snapshot(rebuild_job_state(events))
        with pytest.raises(ValueError, match="structlog"):
            audit.records()


def test_rebuild_needs_records() -> None:
    """Replaying nothing is an error, not an empty JobState."""
    with pytest.raises(ValueError, match="no records"):
        rebuild_job_state([])

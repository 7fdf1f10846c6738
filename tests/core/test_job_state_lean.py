"""
A lean JobState: what a finished job keeps packed reads back as it was booked, a dict
handed out stays the job's, and the times the job stamps itself read as datetimes.
"""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Any

from helpers import Relay, chain

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, PluginManager, hookimpl
from routilux._util._clock import iso_now, iso_of
from routilux.history import EmitRecord, ExecutionRecord
from routilux.job_state import ChangeKind, JobStateChange


def _run_chain() -> JobState:
    flow = Flow("lean", "sequential")
    chain(flow, 2)
    try:
        return flow.execute("e", {"value": 1})
    finally:
        flow.shutdown()


class _StateWatcher:
    # A plugin that keeps the routine states as the job wrote them last.
    def __init__(self) -> None:
        self.written: dict[str | None, Any] = {}

    @hookimpl
    def routilux_job_state_changed(self, change: JobStateChange) -> None:
        if change.kind is ChangeKind.ROUTINE_STATE:
            self.written[change.routine_id] = change.new


class TestRoutineStates:
    def test_finished_job_reads_back_what_it_booked(self) -> None:
        """A finished job's document and its routine states agree, read in any order."""
        js = _run_chain()
        assert js.status == "completed"
        document = js.serialize()
        assert js.serialize() == document
        states = js.routine_states
        assert states == document["routine_states"]
        assert list(states) == ["e", "r0", "r1"]
        for state in states.values():
            assert list(state) == [
                "status",
                "start_time",
                "end_time",
                "execution_time",
                "activation_count",
            ]
            assert state["status"] == "completed"
            assert state["activation_count"] == 1
            assert datetime.fromisoformat(state["start_time"]) <= datetime.fromisoformat(
                state["end_time"]
            )
        assert js.serialize() == document
        loaded = JobState()
        loaded.deserialize(document)
        assert loaded.serialize() == document

    def test_states_taken_while_running_stay_the_jobs(self) -> None:
        """The dict of routine_states a handler took is the job's own after it finishes."""
        taken: list[dict[str, Any]] = []

        class Taker(Relay):
            def take(self, value: Any = None, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                taken.append(ctx.job_state.routine_states)

        flow = Flow("lean", "sequential")
        chain(flow, 0)
        flow.add_routine(Taker(), "t")
        flow.connect("e", "out", "t", "input")
        try:
            js = flow.execute("e", {"value": 1})
        finally:
            flow.shutdown()
        assert js.status == "completed"
        assert len(taken) == 1
        assert taken[0] is js.routine_states
        assert taken[0]["t"]["status"] == "completed"
        assert js.serialize()["routine_states"] == taken[0]

    def test_states_read_as_the_engine_wrote_them(self) -> None:
        """Times the job packs from the engine's epoch times read back as the text written."""
        watcher = _StateWatcher()
        pm = PluginManager()
        pm.register(watcher)
        flow = Flow("lean", "sequential", plugins=pm)
        chain(flow, 2)
        try:
            js = flow.execute("e", {"value": 1})
        finally:
            flow.shutdown()
        assert js.status == "completed"
        assert watcher.written == js.routine_states

    def test_states_read_as_written_after_a_retry(self) -> None:
        """A routine that ran before a retry and after it keeps its first start."""

        class FailOnce(Relay):
            def take(self, value: Any = None, **_: Any) -> None:
                if not getattr(self, "failed", False):
                    self.failed = True
                    raise ValueError("once")
                super().take(value)

        watcher = _StateWatcher()
        pm = PluginManager()
        pm.register(watcher)
        flow = Flow("lean", "sequential", plugins=pm)
        chain(flow, 1)
        fail_once = FailOnce()
        fail_once.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
        flow.add_routine(Relay(), "q")
        flow.add_routine(fail_once, "p")
        flow.connect("r0", "out", "q", "input")
        flow.connect("r0", "out", "p", "input")
        flow.connect("p", "out", "q", "input")
        try:
            js = flow.execute("e", {"value": 1})
            assert js.status == "failed"
            before = js.serialize()["routine_states"]
            flow.retry(js)
            assert js.wait_for_completion(10)
        finally:
            flow.shutdown()
        assert js.status == "completed"
        assert watcher.written == js.routine_states
        assert [1, 1, 2] == [js.routine_states[r]["activation_count"] for r in ("e", "r0", "q")]
        assert before["q"]["start_time"] == js.routine_states["q"]["start_time"]

    def test_change_after_finish_keeps_the_others(self) -> None:
        """A routine state written after the job finished joins the ones it booked."""
        js = _run_chain()
        before = js.serialize()["routine_states"]
        js.update_routine_state("late", {"note": 1})
        assert js.routine_states == {**before, "late": {"note": 1}}
        held = js.get_routine_state("e")
        assert held is not None
        held["note"] = 2
        assert js.serialize()["routine_states"]["e"]["note"] == 2


class TestTimes:
    def test_stamped_times_are_datetimes(self) -> None:
        """created_at and updated_at read as datetimes, in order, and are assignable."""
        js = JobState("f")
        js.update_shared_data("k", 1)
        assert isinstance(js.created_at, datetime)
        assert isinstance(js.updated_at, datetime)
        assert js.created_at <= js.updated_at
        when = datetime(2020, 1, 2, 3, 4, 5, 6)
        js.created_at = when
        js.updated_at = when
        assert (js.created_at, js.updated_at) == (when, when)
        document = js.serialize()
        assert document["created_at"] == document["updated_at"] == when.isoformat()

    def test_iso_now_is_now_as_isoformat_writes_it(self) -> None:
        """The shared log's stamp is the time now, in datetime.isoformat's form."""
        before = datetime.now()
        stamp = iso_now()
        after = datetime.now()
        assert datetime.fromisoformat(stamp).isoformat() == stamp
        assert before <= datetime.fromisoformat(stamp) <= after, (before, stamp, after)
        js = JobState("f")
        js.append_to_shared_log({"m": 1})
        logged = js.get_shared_log()[0]["timestamp"]
        assert datetime.fromisoformat(logged).isoformat() == logged

    def test_packing_keeps_every_kind_of_state(self) -> None:
        """Engine states, states with other keys and non-dicts unpack equal, in order."""
        from routilux.model._job_routines import _pack, _unpack

        booked = {
            "status": "completed",
            "start_time": "s",
            "end_time": "e",
            "execution_time": 0.5,
            "activation_count": 2,
        }
        states: dict[str, Any] = {
            "a": booked,
            "b": {**booked, "retry_count": 1},
            "c": "anything",
            "d": dict(reversed(booked.items())),
            "e": dict(booked),
            "f": {**booked, "end_time": 5.0},
        }
        unpacked = _unpack(_pack(states))
        assert unpacked == states
        assert list(unpacked) == list(states)
        assert [list(s) for s in unpacked.values() if isinstance(s, dict)] == [
            list(s) for s in states.values() if isinstance(s, dict)
        ]
        assert _unpack(_pack({})) == {}
        timed = {**booked, "start_time": iso_of(1.5), "end_time": iso_of(2.5)}
        taken = {**timed, "start_time": "s", "execution_time": 1.0}
        once = {**timed, "execution_time": 1.0, "activation_count": 1}
        written = {
            "a": (timed, 1.5, 2.5),
            "b": (taken, "s", 2.5),
            "c": ({}, 1.5, 2.5),
            "d": (once, 1.5, 2.5),
            "e": ({**taken, "activation_count": 1}, "s", 2.5),
        }
        both = {"a": timed, "b": taken, "c": dict(timed), "d": once, "e": written["e"][0]}
        assert both == _unpack(_pack(both, written))


def _seen(records: Any) -> list[tuple[Any, ...]]:
    # What a reader sees of each record: its kind, fields, and target when emitted.
    return [
        (
            type(r).__name__,
            r.routine_id,
            r.event_name,
            r.data,
            r.timestamp,
            getattr(r, "target_routine_id", None),
        )
        for r in records
    ]


class TestHistory:
    def test_finished_job_reads_back_what_it_booked(self) -> None:
        """The history of a finished job reads as it was written at its last checkpoint."""
        snapshots: list[dict[str, Any]] = []
        flow = Flow("lean", "sequential")
        chain(flow, 2)
        try:
            js = flow.execute(
                "e", {"value": 1}, checkpoint=lambda _js, snap: snapshots.append(snap)
            )
        finally:
            flow.shutdown()
        assert js.status == "completed"
        written = snapshots[-1]["execution_history"]
        assert written == js.serialize()["execution_history"]
        records = js.get_execution_history()
        assert [
            ("ExecutionRecord", "e", "start", {"value": 1}, None),
            ("EmitRecord", "e", "out", {"value": 1}, "r0"),
            ("EmitRecord", "r0", "out", {"value": 1}, "r1"),
            ("EmitRecord", "r1", "out", {"value": 1}, None),
        ] == [
            (kind, rid, name, data, target)
            for kind, rid, name, data, _, target in _seen(records[:4])
        ]
        assert "completed" == records[4].event_name
        assert [r["timestamp"] for r in written] == [r.timestamp.isoformat() for r in records]
        assert js.execution_history[1] is js.execution_history[1]

    def test_reading_in_any_order_gives_the_same_records(self) -> None:
        """Length, index, tracker and document reads of a finished job agree, in any order."""
        js = _run_chain()
        assert 5 == len(js.execution_history)
        document = js.serialize()
        events = js.execution_tracker.event_flow if js.execution_tracker else []
        assert [("e", "r0"), ("r0", "r1"), ("r1", None)] == [
            (ev["source_routine_id"], ev["target_routine_id"]) for ev in events
        ]
        assert [ev["data"] for ev in events] == [r.data for r in js.execution_history[1:4]]
        assert all(
            ev["data"] is r.data for ev, r in zip(events, js.execution_history[1:4], strict=True)
        )
        assert document == js.serialize()
        again = JobState()
        again.deserialize(document)
        assert _seen(again.execution_history) == _seen(
            ExecutionRecord(r.routine_id, r.event_name, r.data, r.timestamp)
            if type(r) is EmitRecord
            else r
            for r in js.execution_history
        )

    def test_appending_after_finish_keeps_the_booked_records(self) -> None:
        """A record added to a finished job follows the ones it booked; a bound still holds."""
        js = _run_chain()
        js.record_execution("late", "note", {"n": 1})
        assert [
            ("e", "start", {"value": 1}),
            ("e", "out", {"value": 1}),
            ("r0", "out", {"value": 1}),
            ("r1", "out", {"value": 1}),
            ("e", "completed"),
            ("late", "note", {"n": 1}),
        ] == [
            (r.routine_id, r.event_name, r.data)
            if r.event_name != "completed"
            else ("e", "completed")
            for r in js.execution_history
        ]
        flow = Flow("lean", "sequential", history_limit=3)
        chain(flow, 2)
        try:
            bounded = flow.execute("e", {"value": 1})
        finally:
            flow.shutdown()
        assert (3, 2) == (len(bounded.execution_history), bounded.history_dropped)
        bounded.record_execution("late", "note", {})
        assert ["out", "completed", "note"] == [r.event_name for r in bounded.execution_history]
        assert 3 == bounded.history_dropped

    def test_data_given_to_others_stays_the_same_dict(self) -> None:
        """The dict given to record_execution, and the one plugins heard of, stay the records'."""
        given: list[dict[str, Any]] = []
        heard: list[dict[str, Any]] = []

        class Noter(Relay):
            def take(self, value: Any = None, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                note: dict[str, Any] = {"value": value}
                given.append(note)
                ctx.job_state.record_execution(ctx.routine_id, "note", note)
                self.emit("out", value=value)

        class Listener:
            @hookimpl
            def routilux_event_emitted(self, data: dict[str, Any]) -> None:
                heard.append(data)

        pm = PluginManager()
        pm.register(Listener())
        flow = Flow("lean", "sequential", plugins=pm)
        chain(flow, 0)
        flow.add_routine(Noter(), "n")
        flow.connect("e", "out", "n", "input")
        try:
            js = flow.execute("e", {"value": 1})
        finally:
            flow.shutdown()
        assert js.status == "completed"
        notes = [r for r in js.execution_history if r.event_name == "note"]
        assert [id(d) for d in given] == [id(r.data) for r in notes]
        emitted = [r for r in js.execution_history if isinstance(r, EmitRecord)]
        assert [id(d) for d in heard] == [id(r.data) for r in emitted]

    def test_packing_keeps_every_kind_of_entry(self) -> None:
        """Bookings of every shape, records and odd data unpack equal, in order."""
        from routilux.model._records import (
            NOT_EMITTED,
            Given,
            pack_entries,
            unpack_entries,
        )

        record = ExecutionRecord("r", "x", {"a": 1}, datetime(2020, 1, 1))
        shared = {"s": 1}
        given = Given("t")
        items: list[Any] = [
            ("r", "start", {"a": 1, "b": [2]}, 1.5, NOT_EMITTED),
            ("r", "out", {}, 2.5, "t"),
            ("r", "out", {"c": None}, 3.5, None),
            ("r", "out", shared, 4.5, given),
            ("r", "note", shared, 5.5),
            ("r", "odd", "not a dict", 6.5, NOT_EMITTED),
            record,
        ]
        unpacked = unpack_entries(pack_entries(items))
        assert items == unpacked
        assert unpacked[3][2] is shared and unpacked[3][4] is given
        assert unpacked[4][2] is shared and unpacked[6] is record
        assert [] == unpack_entries(pack_entries([]))
        copied = pickle.loads(pickle.dumps(pack_entries(items[:3])))
        assert items[:3] == unpack_entries(copied)
        assert unpack_entries(copied)[0][4] is NOT_EMITTED


class TestTracker:
    def test_finished_tracker_reads_back_its_records(self) -> None:
        """A finished job's tracker gives each activation, the entry's with its params."""
        js = _run_chain()
        tracker = js.execution_tracker
        assert tracker is not None
        runs = tracker.routine_executions
        assert ["e", "r0", "r1"] == list(runs)
        assert [{"value": 1}, {}, {}] == [runs[r][0]["params"] for r in runs]
        assert all(1 == len(records) for records in runs.values())
        for (record,) in runs.values():
            assert "completed" == record["status"]
            assert record["start_time"] <= record["end_time"]
        assert 3 == tracker.get_flow_performance()["total_events"]

    def test_a_tracker_taken_while_running_stays_the_jobs(self) -> None:
        """The tracker a handler took is the job's after it finishes, with every record."""
        taken: list[Any] = []

        class Taker(Relay):
            def take(self, value: Any = None, **_: Any) -> None:
                ctx = self.get_execution_context()
                assert ctx is not None
                taken.append(ctx.job_state.execution_tracker)
                super().take(value)

        flow = Flow("lean", "sequential")
        chain(flow, 0)
        flow.add_routine(Taker(), "t")
        flow.connect("e", "out", "t", "input")
        try:
            js = flow.execute("e", {"value": 1})
        finally:
            flow.shutdown()
        assert js.status == "completed"
        assert taken[0] is js.execution_tracker
        assert ["e", "t"] == list(taken[0].routine_executions)

    def test_flow_and_job_give_the_same_tracker(self) -> None:
        """flow.execution_tracker and the job's are one object, read in either order."""
        flow = Flow("lean", "concurrent")
        chain(flow, 1)
        try:
            first = flow.execute("e", {"value": 1})
            assert flow.execution_tracker is first.execution_tracker
            second = flow.submit("e", {"value": 2})
            during = flow.execution_tracker
            assert second.wait_for_completion(10)
            assert during is flow.execution_tracker is second.execution_tracker
            third = flow.execute("e", {"value": 3})
            tracker = third.execution_tracker
            assert tracker is flow.execution_tracker
        finally:
            flow.shutdown()
        assert tracker is not None
        assert [{"value": 3}] == [r["params"] for r in tracker.routine_executions["e"]]
        assert first.execution_tracker is not second.execution_tracker

    def test_a_retried_job_goes_on_with_its_tracker(self) -> None:
        """The tracker of a failed job that is retried keeps its records and adds the new."""

        class FailOnce(Relay):
            def take(self, value: Any = None, **_: Any) -> None:
                if not getattr(self, "failed", False):
                    self.failed = True
                    raise ValueError("once")
                super().take(value)

        flow = Flow("lean", "sequential")
        chain(flow, 0)
        fail_once = FailOnce()
        fail_once.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
        flow.add_routine(fail_once, "p")
        flow.connect("e", "out", "p", "input")
        try:
            js = flow.execute("e", {"value": 2})
            assert js.status == "failed"
            flow.retry(js)
            assert js.wait_for_completion(10)
        finally:
            flow.shutdown()
        assert js.status == "completed"
        tracker = js.execution_tracker
        assert tracker is not None
        runs = tracker.routine_executions
        assert [{"value": 2}] == [r["params"] for r in runs["e"]]
        assert [("failed", "once"), ("completed", None)] == [
            (r["status"], r.get("error")) for r in runs["p"]
        ]

"""
A lean JobState: what a finished job keeps packed reads back as it was booked, a dict
handed out stays the job's, and the times the job stamps itself read as datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from helpers import Relay, chain

from routilux import Flow, JobState
from routilux._util._clock import iso_now


def _run_chain() -> JobState:
    flow = Flow("lean", "sequential")
    chain(flow, 2)
    try:
        return flow.execute("e", {"value": 1})
    finally:
        flow.shutdown()


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
        }
        unpacked = _unpack(_pack(states))
        assert unpacked == states
        assert list(unpacked) == list(states)
        assert [list(s) for s in unpacked.values() if isinstance(s, dict)] == [
            list(s) for s in states.values() if isinstance(s, dict)
        ]
        assert _unpack(_pack({})) == {}

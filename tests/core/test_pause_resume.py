"""
Per-job pause, resume and cancel.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import Emitter, Gate, Relay, chain, wait_until

from routilux import Flow, JobState, Routine
from routilux.exceptions import (
    EventNotFoundError,
    FlowMismatchError,
    JobStateError,
    RoutineNotFoundError,
    SlotNotFoundError,
)


class PauseInside(Routine):
    """Emits its events, then pauses its own job from inside the handler."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("out", ["value"])
        self.define_event("later", ["value"])

    def run(self, **_: Any) -> None:
        self.emit("out", value=1)
        self.emit("out", value=2)
        self.emit_deferred_event("later", value="deferred")
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.flow.pause(ctx.job_state, reason="wait", checkpoint={"step": 1})


def _flow(strategy: str) -> Flow:
    flow = Flow(flow_id="p", execution_strategy=strategy, max_workers=3)
    flow.add_routine(PauseInside(), "p")
    flow.add_routine(Relay(), "r")
    flow.connect("p", "out", "r", "input")
    flow.connect("p", "later", "r", "input")
    return flow


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_pause_from_inside_handler(strategy: str) -> None:
    """Queued activations become pending tasks; resume runs deferred events, then them."""
    flow = _flow(strategy)
    js = flow.execute("p")
    assert js.status == "paused"
    assert len(js.pause_points) == 1
    point = js.pause_points[0]
    assert (point["reason"], point["checkpoint"]) == ("wait", {"step": 1})
    assert js.checkpoint == {"step": 1}
    assert js.shared_log == []
    assert [t["slot_routine_id"] for t in js.pending_tasks] == ["r", "r"]
    assert [t["data"] for t in js.pending_tasks] == [{"value": 1}, {"value": 2}]

    assert flow.resume(js) is js
    assert js.wait_for_completion(10)
    assert js.status == "completed"
    assert js.shared_log[0]["value"] == "deferred"
    assert sorted(e["value"] for e in js.shared_log[1:]) == [1, 2]
    assert js.pending_tasks == [] and js.deferred_events == []
    flow.shutdown()


def test_pause_one_job_leaves_other_untouched() -> None:
    """Pausing one of two concurrent jobs never touches the other."""
    flow = Flow(flow_id="two", execution_strategy="concurrent", max_workers=2)
    gate = Gate()
    flow.add_routine(Emitter(), "e")
    flow.add_routine(gate, "g")
    flow.add_routine(Relay(), "r")
    flow.connect("e", "out", "g", "input")
    flow.connect("g", "out", "r", "input")
    a = flow.submit("e", {"items": [1]})
    assert gate.entered.wait(10)
    b = flow.submit("e", {"items": [2]})
    pauser = threading.Thread(
        target=flow.pause, args=(a,), kwargs={"reason": "stop a"}, daemon=True
    )
    pauser.start()
    gate.release.set()
    pauser.join(10)
    assert not pauser.is_alive()
    assert b.wait_for_completion(10) and b.status == "completed"
    assert a.status == "paused"
    assert [e["value"] for e in b.shared_log] == [2]
    flow.resume(a)
    assert a.wait_for_completion(10) and a.status == "completed"
    assert [e["value"] for e in a.shared_log] == [1]
    flow.shutdown()


def test_pause_waits_only_for_running_handlers() -> None:
    """pause() from outside returns once the running handler returns; nothing new starts."""
    flow = Flow(execution_strategy="concurrent", max_workers=1)
    gate = Gate()
    flow.add_routine(Emitter(), "e")
    flow.add_routine(gate, "g")
    flow.add_routine(Relay(), "r")
    flow.connect("e", "out", "g", "input")
    flow.connect("g", "out", "r", "input")
    js = flow.submit("e", {"items": [1, 2, 3]})
    assert gate.entered.wait(10)
    done = threading.Event()
    t = threading.Thread(target=lambda: (flow.pause(js), done.set()), daemon=True)
    t.start()
    # pause() marks the job paused at once, then waits for the handler the gate holds.
    wait_until(lambda: js.status == "paused", 10, "the job to be marked paused")
    assert not gate.returned.is_set()
    assert not done.is_set(), "pause() returned while a handler of the job was running"
    gate.release.set()
    assert done.wait(10), "pause() did not return once the running handler returned"
    assert js.status == "paused"
    routines = sorted(task["slot_routine_id"] for task in js.pending_tasks)
    assert routines == ["g", "g", "r"]
    assert js.shared_log == []
    flow.shutdown()


def test_cancel_drops_queued_work_and_wakes_waiters() -> None:
    """Cancel while activations are queued: they never run; waiters wake."""
    flow = Flow(execution_strategy="concurrent", max_workers=1)
    gate = Gate()
    flow.add_routine(Emitter(), "e")
    flow.add_routine(gate, "g")
    flow.connect("e", "out", "g", "input")
    js = flow.submit("e", {"items": [1, 2, 3]})
    assert gate.entered.wait(10)
    waiter_result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: waiter_result.append(js.wait_for_completion(10)), daemon=True
    )
    waiter.start()
    flow.cancel(js, reason="no longer needed")
    waiter.join(10)
    assert waiter_result == [True]
    assert js.status == "cancelled"
    assert js.routine_states["_cancellation"] == {"reason": "no longer needed"}
    gate.release.set()
    assert gate.returned.wait(10)
    assert flow.wait_for_completion(10)
    assert gate.calls == 1
    assert js.status == "cancelled"
    flow.shutdown()


@pytest.mark.parametrize("reload", [False, True])
def test_cancel_drops_the_pending_tasks_of_a_paused_job(reload: bool) -> None:
    """A paused job's set-aside activations are dropped by cancel (also for a JobState loaded
    from a document, which has no run): a later resume does not run them."""
    flow = _flow("sequential")
    js = flow.execute("p")
    assert (js.status, len(js.pending_tasks)) == ("paused", 2)
    if reload:
        fresh = JobState()
        fresh.deserialize(js.serialize())
        js = fresh
    flow.cancel(js, reason="stop")
    assert (js.status, js.pending_tasks) == ("cancelled", [])
    # Cancelled is final: a resume is refused and runs nothing of the job.
    with pytest.raises(JobStateError, match="cancelled"):
        flow.resume(js)
    assert (js.status, js.shared_log) == ("cancelled", [])
    flow.shutdown()


def test_set_running_moves_only_a_paused_job() -> None:
    """JobState._set_running (SPEC 9.2): paused becomes running, other statuses stay."""
    for status in ("paused", "completed", "failed", "cancelled", "pending"):
        js = JobState("f")
        js.status = status
        js._set_running()
        assert js.status == ("running" if status == "paused" else status)


def test_pause_resume_cancel_on_finished_job() -> None:
    """They act on finished jobs too, as the JobState guide uses them."""
    flow = Flow(flow_id="f")
    chain(flow, 1)
    js = flow.execute("e")
    flow.pause(js, reason="inspect")
    assert js.status == "paused"
    flow.resume(js)
    assert js.wait_for_completion(10) and js.status == "completed"
    flow.cancel(js)
    assert js.status == "cancelled"
    flow.shutdown()


@pytest.mark.parametrize("method", ["pause", "resume", "cancel"])
def test_flow_mismatch(method: str) -> None:
    """Each raises a ValueError whose message contains "does not match"."""
    with pytest.raises(FlowMismatchError, match="does not match") as info:
        getattr(Flow(flow_id="a"), method)(JobState("b"))
    assert isinstance(info.value, ValueError)


def test_resume_unknown_entry_routine() -> None:
    """Resuming a job whose entry routine is not in the flow raises "not found in flow"."""
    js = JobState("a")
    js.current_routine_id = "ghost"
    with pytest.raises(RoutineNotFoundError, match="not found in flow"):
        Flow(flow_id="a").resume(js)


def test_resume_fresh_job_state_with_pending_tasks() -> None:
    """A JobState built elsewhere (as after loading) resumes on a new Flow."""
    flow = Flow(flow_id="f")
    chain(flow, 2)
    js = JobState("f")
    js.current_routine_id = "e"
    js.pending_tasks.append({"slot_routine_id": "r0", "slot_name": "input", "data": {"value": 5}})
    js.deferred_events.append({"routine_id": "e", "event_name": "out", "data": {"value": 6}})
    flow.resume(js)
    assert js.wait_for_completion(10) and js.status == "completed"
    assert [e["value"] for e in js.shared_log] == [6, 5, 6, 5]  # deferred first, FIFO
    flow.shutdown()


def test_resume_refuses_unknown_pending_task() -> None:
    """A pending task for a routine the flow lacks is refused before anything changes (it
    used to be dropped with a warning, and the job reported completed without it)."""
    flow = Flow(flow_id="f")
    chain(flow, 1)
    js = JobState("f")
    js.pending_tasks.append({"slot_routine_id": "ghost", "slot_name": "input", "data": {}})
    with pytest.raises(RoutineNotFoundError, match="ghost"):
        flow.resume(js)
    assert ("pending", 1) == (js.status, len(js.pending_tasks))
    flow.shutdown()


def test_resume_refuses_unknown_slot_and_deferred_event() -> None:
    """An unknown slot of a pending task, or an unknown event of a deferred event, is
    refused with SlotNotFoundError / EventNotFoundError naming it."""
    flow = Flow(flow_id="f")
    chain(flow, 1)
    js = JobState("f")
    js.pending_tasks.append({"slot_routine_id": "r0", "slot_name": "nope", "data": {}})
    with pytest.raises(SlotNotFoundError, match="nope"):
        flow.resume(js)
    js = JobState("f")
    js.deferred_events.append({"routine_id": "e", "event_name": "never", "data": {}})
    with pytest.raises(EventNotFoundError, match="never"):
        flow.resume(js)
    assert 1 == len(js.deferred_events)
    flow.shutdown()


@pytest.mark.parametrize("reload", [False, True])
def test_resumed_job_goes_on_counting(reload: bool) -> None:
    """A routine's activation count, execution time and first start carry over a resume,
    in the same process or after the job was serialized and loaded."""
    flow = Flow(flow_id="count")
    flow.add_routine(Emitter(), "e")
    flow.add_routine(Relay(), "r")
    flow.connect("e", "out", "r", "input")
    js = flow.execute("e", {"items": [1, 2]})
    before = dict(js.routine_states["r"])
    assert before["activation_count"] == 2
    if reload:
        loaded = JobState()
        loaded.deserialize(js.serialize())
        js = loaded
    js.add_deferred_event("e", "out", {"value": 3})
    flow.resume(js)
    assert js.wait_for_completion(10)
    after = js.routine_states["r"]
    assert after["activation_count"] == 3
    assert after["start_time"] == before["start_time"]
    assert after["execution_time"] >= before["execution_time"]
    assert after["end_time"] >= before["end_time"]
    flow.shutdown()


def test_routine_state_that_is_not_a_dict_is_replaced() -> None:
    """A routine state a user set to something else than a dict does not break the job."""
    flow = Flow(flow_id="odd")
    flow.add_routine(Emitter(), "e")
    flow.add_routine(Relay(), "r")
    flow.connect("e", "out", "r", "input")
    js = JobState("odd")
    js.routine_states["r"] = "not a dict"  # type: ignore[assignment]
    flow.execute("e", {"items": [1, 2]}, job_state=js)
    assert js.status == "completed"
    assert js.routine_states["r"]["activation_count"] == 2
    flow.shutdown()


def _relayed(flow_id: str, strategy: str) -> tuple[Flow, JobState]:
    # A flow whose entry "e" emits to a Relay "r", and a JobState for a job of it.
    flow = Flow(flow_id=flow_id, execution_strategy=strategy)
    flow.add_routine(Emitter(), "e")
    flow.add_routine(Relay(), "r")
    flow.connect("e", "out", "r", "input")
    return flow, JobState(flow.flow_id)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_paused_and_resumed_as_it_starts_runs_its_entry_work(strategy: str) -> None:
    """A listener of ``job_started`` that pauses and resumes the job hands it to the pool
    before its entry work is queued. A worker that takes it then leaves it running: the job
    completes only after its entry work ran."""
    flow, js = _relayed("resumed-at-start", strategy)

    def resume_at_start(event: Any) -> None:
        if "job_started" == event.kind:
            flow.pause(js, reason="at start")
            flow.resume(js)
            run = js.run_state  # the engine's: handed to the pool, then taken by a worker
            wait_until(
                lambda: not (run.scheduled or run.runners),
                10,
                "a worker to take the resumed job and leave it",
            )
            assert "running" == js.status, "the job ended before its entry work was queued"

    try:
        flow.submit("e", {"value": 4}, job_state=js, on_event=resume_at_start)
        assert js.wait_for_completion(10), f"job still {js.status}"
    finally:
        flow.shutdown()
    assert "completed" == js.status
    assert [("r", 4)] == [(e["routine"], e["value"]) for e in js.shared_log]


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_paused_as_it_starts_keeps_its_entry_work(strategy: str) -> None:
    """A job paused by a listener of its ``job_started`` event, before its entry work is
    queued, keeps that work pending: its JobState says so, and the job loaded from it runs
    the work on resume."""
    flow, js = _relayed("paused-at-start", strategy)

    def pause_at_start(event: Any) -> None:
        if "job_started" == event.kind:
            flow.pause(js, reason="at start")

    try:
        flow.submit("e", {"value": 4}, job_state=js, on_event=pause_at_start)
        wait_until(lambda: "paused" == js.status, 10, "the job pausing as it started")
        assert [("e", "trigger", {"value": 4})] == [
            (t["slot_routine_id"], t["slot_name"], t["data"]) for t in js.pending_tasks
        ]
        loaded = JobState()
        loaded.deserialize(js.serialize())
        flow.resume(loaded)
        assert loaded.wait_for_completion(10), f"job still {loaded.status}"
    finally:
        flow.shutdown()
    assert "completed" == loaded.status
    assert [("r", 4)] == [(e["routine"], e["value"]) for e in loaded.shared_log]

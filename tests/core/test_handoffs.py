"""
A sequential job is handed to its flow's worker pool only when no worker runs it and it
does not wait in the pool already. A job handed over twice at once would have a second
worker take it for nothing, or run beside the first: the guards of ``JobRun.enqueue``,
``schedule`` and ``release_hold``, and of the end of a coroutine, keep it out.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from helpers import Emitter, Gate, chain, shut_down_within, wait_until

from routilux import Flow, JobState, Routine


WAIT = 10.0


class Ask(Routine):
    """Emits ``next`` and pauses its job from inside the handler."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("next", ["n"])

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        self.emit("next", n=1)
        ctx.flow.pause(ctx.job_state, reason="ask")


class Blocked(Routine):
    """Says it started, waits for ``gate`` (config), then emits ``out`` twice."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.define_event("out", ["n"])

    def take(self, n: int, **_: Any) -> None:
        self.get_config("started").set()
        assert self.get_config("gate").wait(WAIT), "the gate was never opened"
        self.emit("out", n=n + 1)
        self.emit("out", n=n + 2)


class Keep(Routine):
    """Keeps what it gets in the shared log."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, n: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"n": n})


class Handoffs:
    """What :func:`watch` saw: every hand-off of a job to the pool, and what was wrong."""

    def __init__(self) -> None:
        self.count = 0
        self.wrong: list[str] = []


def watch(flow: Flow) -> Handoffs:
    """Check and count every hand-off of a job to the flow's pool."""
    pool = flow._get_executor()
    push = pool.push
    seen = Handoffs()

    def checked(run: Any) -> None:
        seen.count += 1
        if run in pool._ready:
            seen.wrong.append("handed over while it waited in the pool")
        if run.sequential and run.runners:
            seen.wrong.append(f"handed over while {run.runners} worker(s) ran it")
        push(run)

    pool.push = checked  # type: ignore[method-assign]
    return seen


def test_a_resumed_job_is_handed_to_the_pool_once() -> None:
    """Resume of a job paused with work pending hands it over once: its work runs on one
    worker, and neither the end of the resume nor the work it emits hands the job over
    again while that worker runs it."""
    started, gate = threading.Event(), threading.Event()
    flow = Flow("handoffs", execution_strategy="sequential")
    flow.add_routine(Ask(), "ask")
    blocked = Blocked()
    blocked.set_config(started=started, gate=gate)
    flow.add_routine(blocked, "blocked")
    flow.add_routine(Keep(), "keep")
    flow.connect("ask", "next", "blocked", "input")
    flow.connect("blocked", "out", "keep", "input")
    with shut_down_within(flow):
        seen = watch(flow)
        job = flow.submit("ask")
        wait_until(lambda: "paused" == job.status, WAIT, "the job pausing itself")
        assert 1 == len(job.pending_tasks)
        flow.resume(job)
        assert started.wait(WAIT), "the pending work did not run after the resume"
        gate.set()
        assert job.wait_for_completion(WAIT), f"job still {job.status}"
    assert "completed" == job.status
    assert [2, 3] == [e["n"] for e in job.shared_log]
    assert [] == seen.wrong


def test_work_emitted_while_the_job_waits_in_the_pool_does_not_hand_it_over_again() -> None:
    """A concurrent job whose handler emits three times on the flow's one worker is handed
    to the pool once (the second emit: the runner keeps one for itself); the third emit
    finds it waiting there."""
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=1)
    flow.add_routine(Emitter(), "emit")
    flow.add_routine(Keep(), "keep")
    flow.connect("emit", "out", "keep", "input", param_mapping={"value": "n"})
    with shut_down_within(flow):
        seen = watch(flow)
        job = flow.execute("emit", {"items": [1, 2, 3]}, timeout=WAIT)
    assert "completed" == job.status, f"job still {job.status}"
    assert [1, 2, 3] == sorted(e["n"] for e in job.shared_log)
    assert [] == seen.wrong


def _gated() -> tuple[Flow, Gate]:
    # One worker; a job entering at "gate" holds it until the test releases the gate, and
    # a job entering at "emit" keeps what it emits in its shared log.
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=1)
    gate = Gate()
    flow.add_routine(gate, "gate")
    flow.add_routine(Emitter(), "emit")
    flow.add_routine(Keep(), "keep")
    flow.connect("emit", "out", "keep", "input", param_mapping={"value": "n"})
    return flow, gate


def test_a_job_paused_and_resumed_while_it_waits_in_the_pool_is_handed_over_once() -> None:
    """A submitted job waits in the pool while another job holds the flow's one worker.
    Paused and resumed there, it stays in the pool: its work runs when the worker is free,
    and it is not handed over a second time."""
    flow, gate = _gated()
    with shut_down_within(flow):
        seen = watch(flow)
        first = flow.submit("gate", {"value": 0})
        assert gate.entered.wait(WAIT), "the first job never took the worker"
        second = flow.submit("emit", {"value": 7})
        flow.pause(second, reason="hold")
        assert "paused" == second.status
        assert 1 == len(second.pending_tasks)
        flow.resume(second)
        gate.release.set()
        assert first.wait_for_completion(WAIT), f"first job still {first.status}"
        assert second.wait_for_completion(WAIT), f"second job still {second.status}"
    assert "completed" == first.status
    assert "completed" == second.status
    assert [7] == [e["n"] for e in second.shared_log]
    assert [] == seen.wrong


def test_work_a_handler_emits_for_its_own_worker_is_not_handed_over() -> None:
    """In a concurrent job, a handler that emits once leaves that work to the worker that
    runs it (it takes it when the handler returns): a chain of relays on the flow's one
    worker is handed to the pool once, when it is started."""
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=1)
    last = chain(flow, 3)
    flow.add_routine(Keep(), "keep")
    flow.connect(last, "out", "keep", "input", param_mapping={"value": "n"})
    with shut_down_within(flow):
        seen = watch(flow)
        job = flow.execute("e", {"value": 5}, timeout=WAIT)
    assert "completed" == job.status, f"job still {job.status}"
    assert [5] == [e["n"] for e in job.shared_log if "n" in e]
    assert 1 == seen.count, f"handed to the pool {seen.count} times"
    assert [] == seen.wrong


class EmitTwiceAndWait(Routine):
    """Emits ``out`` twice, then waits for ``started`` (config) before it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["n"])

    def go(self, **_: Any) -> None:
        self.emit("out", n=1)
        self.emit("out", n=2)
        assert self.get_config("started").wait(WAIT), "no emitted work started meanwhile"


class Started(Keep):
    """Keeps what it gets, and says it started."""

    def take(self, n: int, **kw: Any) -> None:
        self.get_config("started").set()
        super().take(n, **kw)


def test_a_handlers_second_emit_goes_to_a_free_worker_at_once() -> None:
    """A concurrent job's handler that emits twice keeps one activation for its worker
    and hands the job over for the other at once: the flow's second worker runs it while
    the handler still runs."""
    started = threading.Event()
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=2)
    source, sink = EmitTwiceAndWait(), Started()
    source.set_config(started=started)
    sink.set_config(started=started)
    flow.add_routine(source, "source")
    flow.add_routine(sink, "sink")
    flow.connect("source", "out", "sink", "input")
    with shut_down_within(flow):
        seen = watch(flow)
        job = flow.execute("source", timeout=WAIT)
    assert "completed" == job.status, f"job {job.status}: {job.errors}"
    assert [1, 2] == sorted(e["n"] for e in job.shared_log)
    assert [] == seen.wrong


class PauseMe(Routine):
    """Pauses its job from inside the handler, leaving no work."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)

    def go(self, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.flow.pause(ctx.job_state, reason="nothing left")


def test_a_job_resumed_twice_while_it_waits_in_the_pool_is_handed_over_once() -> None:
    """A paused job with no work left is handed to the pool by its resume so that a worker
    finishes it. Paused and resumed again while it still waits there (the flow's one worker
    is busy with another job), it is not handed over a second time."""
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=1)
    gate = Gate()
    flow.add_routine(gate, "gate")
    flow.add_routine(PauseMe(), "pause")
    with shut_down_within(flow):
        seen = watch(flow)
        second = flow.submit("pause")
        wait_until(lambda: "paused" == second.status, WAIT, "the job pausing itself")
        assert [] == second.pending_tasks
        first = flow.submit("gate", {"value": 0})
        assert gate.entered.wait(WAIT), "the first job never took the worker"
        flow.resume(second)
        flow.pause(second, reason="again")
        assert "paused" == second.status
        flow.resume(second)
        gate.release.set()
        assert first.wait_for_completion(WAIT), f"first job still {first.status}"
        assert second.wait_for_completion(WAIT), f"second job still {second.status}"
    assert ("completed", "completed") == (first.status, second.status)
    assert [] == seen.wrong
    assert 3 == seen.count, f"handed to the pool {seen.count} times"


def test_a_job_resumed_as_it_starts_is_handed_over_once() -> None:
    """A listener of ``job_started`` that pauses and resumes the job hands it to the pool.
    While it waits there (the flow's one worker is busy with another job), the end of its
    start does not hand it over a second time."""
    flow, gate = _gated()
    second = JobState(flow.flow_id)

    def resume_at_start(event: Any) -> None:
        if "job_started" == event.kind:
            flow.pause(second, reason="at start")
            flow.resume(second)

    with shut_down_within(flow):
        seen = watch(flow)
        first = flow.submit("gate", {"value": 0})
        assert gate.entered.wait(WAIT), "the first job never took the worker"
        flow.submit("emit", {"value": 7}, job_state=second, on_event=resume_at_start)
        gate.release.set()
        assert first.wait_for_completion(WAIT), f"first job still {first.status}"
        assert second.wait_for_completion(WAIT), f"second job still {second.status}"
    assert ("completed", "completed") == (first.status, second.status)
    assert [7] == [e["n"] for e in second.shared_log]
    assert [] == seen.wrong
    assert 2 == seen.count, f"handed to the pool {seen.count} times"


class EmitLater(Routine):
    """An ``async def`` handler: says it started, waits for ``go`` (config), emits ``out``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["n"])

    async def go(self, **_: Any) -> None:
        self.get_config("started").set()
        go = self.get_config("go")
        assert await asyncio.to_thread(go.wait, WAIT), "the coroutine was never let go"
        self.emit("out", n=1)


def test_a_coroutine_that_ends_while_its_job_waits_in_the_pool_does_not_hand_it_over() -> None:
    """A coroutine emits (which hands its job to the pool: the flow's one worker is busy
    with another job) and ends while the job waits there: its end does not hand the job
    over a second time."""
    flow = Flow("handoffs", execution_strategy="concurrent", max_workers=1)
    gate = Gate()
    flow.add_routine(gate, "gate")
    later = EmitLater()
    started, go = threading.Event(), threading.Event()
    later.set_config(started=started, go=go)
    flow.add_routine(later, "later")
    flow.add_routine(Keep(), "keep")
    flow.connect("later", "out", "keep", "input")
    with shut_down_within(flow):
        seen = watch(flow)
        second = flow.submit("later")
        assert started.wait(WAIT), "the coroutine never started"
        first = flow.submit("gate", {"value": 0})
        assert gate.entered.wait(WAIT), "the first job never took the worker"
        go.set()
        run = second.run_state  # the engine's: its coroutine has ended once none is in flight
        wait_until(lambda: 0 == run.in_flight, WAIT, "the coroutine to end")
        gate.release.set()
        assert first.wait_for_completion(WAIT), f"first job still {first.status}"
        assert second.wait_for_completion(WAIT), f"second job still {second.status}"
    assert ("completed", "completed") == (first.status, second.status)
    assert [1] == [e["n"] for e in second.shared_log]
    assert [] == seen.wrong
    assert 3 == seen.count, f"handed to the pool {seen.count} times"

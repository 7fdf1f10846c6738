"""
A sequential job is handed to its flow's worker pool only when no worker runs it and it
does not wait in the pool already. A job handed over twice at once would have a second
worker take it for nothing, or run beside the first: the guards of ``JobRun.enqueue``,
``schedule`` and ``release_hold`` keep it out.
"""

from __future__ import annotations

import threading
from typing import Any

from helpers import shut_down_within, wait_until

from routilux import Flow, Routine


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


def watch(flow: Flow) -> list[str]:
    """Check every hand-off of a job to the flow's pool; return what was wrong."""
    pool = flow._get_executor()
    push = pool.push
    wrong: list[str] = []

    def checked(run: Any) -> None:
        if run in pool._ready:
            wrong.append("handed over while it waited in the pool")
        if run.sequential and run.runners:
            wrong.append(f"handed over while {run.runners} worker(s) ran it")
        push(run)

    pool.push = checked  # type: ignore[method-assign]
    return wrong


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
        wrong = watch(flow)
        job = flow.submit("ask")
        wait_until(lambda: "paused" == job.status, WAIT, "the job pausing itself")
        assert 1 == len(job.pending_tasks)
        flow.resume(job)
        assert started.wait(WAIT), "the pending work did not run after the resume"
        gate.set()
        assert job.wait_for_completion(WAIT), f"job still {job.status}"
    assert "completed" == job.status
    assert [2, 3] == [e["n"] for e in job.shared_log]
    assert [] == wrong

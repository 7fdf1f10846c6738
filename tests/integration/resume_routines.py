"""
Routines of the cross-process resume test, registered by name, and the script each
process runs (``python resume_routines.py pause|resume|straight DIR STRATEGY``).

Both processes import this module, so the routine classes are registered in both; the
resuming process rebuilds the flow from its JSON alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from routilux import ErrorHandler, Flow, JobState, Routine
from routilux.registry import register_routine


@register_routine(name="tests.resume.Asker")
class Asker(Routine):
    """Entry: emits one ``item`` per value, asks a question, and pauses (if configured)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("item", ["value"])
        self.define_event("question", ["text"])

    def start(self, values: Any = (), **_: Any) -> None:
        """Ask first (deferred when pausing), then queue the items, then pause."""
        ctx = self.get_execution_context()
        assert ctx is not None
        pausing = bool(self.get_config("pause"))
        self.send_output("started", count=len(values))
        ctx.job_state.update_shared_data("asked", True)
        if pausing:
            self.emit_deferred_event("question", text="name?")
        else:
            self.emit("question", text="name?")
        for value in values:
            self.emit("item", value=value)
        if pausing:
            ctx.flow.pause(ctx.job_state, reason="await user", checkpoint={"asked": True})


@register_routine(name="tests.resume.Worker")
class Worker(Routine):
    """Squares what it receives into the shared data and reports it."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", handler=self.work)

    def work(self, number: int = 0, **_: Any) -> None:
        """Record ``number ** 2`` under this routine's id."""
        ctx = self.get_execution_context()
        assert ctx is not None
        factor = self.get_config("factor", 1)
        ctx.job_state.update_shared_data(f"{ctx.routine_id}:{number}", number * number * factor)
        ctx.job_state.append_to_shared_log({"routine": ctx.routine_id, "n": number})
        self.send_output("square", n=number, square=number * number * factor)


@register_routine(name="tests.resume.Answerer")
class Answerer(Routine):
    """Answers the question."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("ask", handler=self.answer)

    def answer(self, text: str = "", **_: Any) -> None:
        """Store the answer."""
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("answer", f"{text} -> routilux")
        self.send_output("answer", text=text)


def build_flow(strategy: str, pause: bool) -> Flow:
    """
    Fan-out to two workers with the same slot name, a mapping, and error handlers.
    """
    flow = Flow(flow_id="resume-demo", execution_strategy=strategy, max_workers=3)
    asker = Asker()
    asker.set_config(pause=pause)
    flow.add_routine(asker, "asker")
    for rid, factor in (("w1", 1), ("w2", 10)):
        worker = Worker()
        worker.set_config(factor=factor)
        worker.set_error_handler(
            ErrorHandler(
                "retry",
                max_retries=2,
                retry_delay=0.01,
                retryable_exceptions=(TimeoutError, ConnectionError),
            )
        )
        flow.add_routine(worker, rid)
        flow.connect("asker", "item", rid, "in", {"value": "number"})
    flow.add_routine(Answerer(), "answerer")
    flow.connect("asker", "question", "answerer", "ask")
    flow.set_error_handler(ErrorHandler("continue"))
    return flow


VALUES = [1, 2, 3, 4]
_TIMES = {"start_time", "end_time", "execution_time", "error_time"}


def summary(js: JobState) -> dict[str, Any]:
    """What must match between runs: status, shared data, outputs and routine states."""
    return {
        "status": js.status,
        "shared_data": js.shared_data,
        "shared_log": [{k: v for k, v in e.items() if k != "timestamp"} for e in js.shared_log],
        "outputs": [{k: v for k, v in e.items() if k != "timestamp"} for e in js.output_log],
        "routine_states": {
            rid: {k: v for k, v in state.items() if k not in _TIMES}
            for rid, state in js.routine_states.items()
        },
    }


def main(argv: list[str]) -> int:
    """Run one step of the test in this process."""
    mode, folder, strategy = argv[0], Path(argv[1]), argv[2]
    if mode == "straight":
        with build_flow(strategy, pause=False) as flow:
            js = flow.execute("asker", {"values": VALUES})
        (folder / "straight.json").write_text(json.dumps(summary(js)))
        return 0
    if mode == "pause":
        with build_flow(strategy, pause=True) as flow:
            js = flow.execute("asker", {"values": VALUES})
            assert js.status == "paused", js.status
            (folder / "flow.json").write_text(json.dumps(flow.serialize()))
            js.save(folder / "job.json")
        return 0
    if mode == "resume":
        flow = Flow()
        flow.deserialize(json.loads((folder / "flow.json").read_text()))
        js = JobState.load(folder / "job.json")
        with flow:
            resumed = flow.resume(js)
            assert resumed is js
            assert js.wait_for_completion(timeout=10)
        (folder / "resumed.json").write_text(json.dumps(summary(js)))
        return 0
    msg = f"unknown mode {mode!r}"
    raise SystemExit(msg)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

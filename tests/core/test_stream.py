"""
``flow.stream``, ``flow.astream``, ``flow.stream_resume`` and the ``on_event`` option: what a
job's events are, their order, back-pressure, and how a stream ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from helpers import Emitter, Relay, chain, wait_until

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine, StreamEvent
from routilux.exceptions import ConfigurationError, ExecutionContextError


WAIT = 10.0
"""Seconds a test waits at most for a condition (never reached when green)."""


def brief(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """Each event without its time: (kind, routine id, data)."""
    return [(e.kind, e.routine_id, e.data) for e in events]


def test_sequential_job_events_are_a_golden_list(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    chain(flow, 2)
    stream = flow.stream("e", {"items": [1, 2]})
    events = list(stream)
    assert brief(events) == [
        ("job_started", "e", {"flow_id": flow.flow_id}),
        ("activation_started", "e", {"slot": "trigger", "attempt": 1}),
        ("emitted", "e", {"event": "out", "data": {"value": 1}}),
        ("emitted", "e", {"event": "out", "data": {"value": 2}}),
        ("activation_started", "r0", {"slot": "input", "attempt": 1}),
        ("emitted", "r0", {"event": "out", "data": {"value": 1}}),
        ("activation_started", "r0", {"slot": "input", "attempt": 1}),
        ("emitted", "r0", {"event": "out", "data": {"value": 2}}),
        ("activation_started", "r1", {"slot": "input", "attempt": 1}),
        ("emitted", "r1", {"event": "out", "data": {"value": 1}}),
        ("activation_started", "r1", {"slot": "input", "attempt": 1}),
        ("emitted", "r1", {"event": "out", "data": {"value": 2}}),
        ("job_finished", None, {"status": "completed"}),
    ]
    assert all(e.job_id == stream.job_state.job_id for e in events)
    assert [e.job_state for e in events[:-1]] == [None] * 12
    assert events[-1].job_state is stream.job_state
    assert stream.job_state.status == "completed"
    assert list(stream) == []  # ended for good


class Fan(Routine):
    """Emits ``out`` ``count`` times, and sends one output per call."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_slot("input", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, value: Any = 0, count: int = 0, **_: Any) -> None:
        self.send_output("seen", value=value)
        for i in range(count):
            self.emit("out", value=i)


def test_concurrent_job_events_match_its_history(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Fan(), "src")
    for name in ("a", "b", "c"):
        flow.add_routine(Relay(), name)
        flow.connect("src", "out", name, "input")
    flow.connect("a", "out", "b", "input")
    stream = flow.stream("src", {"count": 30})
    events = list(stream)
    js = stream.job_state
    assert js.status == "completed"
    assert events[0].kind == "job_started"
    assert events[-1].kind == "job_finished"
    assert [e.kind for e in events].count("job_finished") == 1
    emitted = Counter(
        (e.routine_id, e.data["event"], e.data["data"]["value"])
        for e in events
        if e.kind == "emitted"
    )
    booked = Counter(
        (r.routine_id, r.event_name, r.data["value"])
        for r in js.execution_history
        if r.event_name == "out"
    )
    assert emitted == booked
    assert sum(emitted.values()) == 30 + 30 + 30 + 60  # src, a, c, and b twice (src, a)
    started = Counter(e.routine_id for e in events if e.kind == "activation_started")
    assert started == {rid: state["activation_count"] for rid, state in js.routine_states.items()}
    outputs = [(e.routine_id, e.data) for e in events if e.kind == "output"]
    assert outputs == [("src", {"output_type": "seen", "data": {"value": 0}})]
    assert len(js.output_log) == 1


def test_a_slow_consumer_holds_the_job_back_and_loses_nothing(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    chain(flow, 1)
    stream = flow.stream("e", {"items": list(range(200))}, buffer_size=4)
    first = next(stream)
    assert first.kind == "job_started"
    # The consumer waits until the job has filled the buffer: the job then waits for it.
    wait_until(lambda: len(stream.buffer) == 4, WAIT, "the job to fill the buffer")
    js = stream.job_state
    assert js.status == "running"
    # A producer books its record, then waits to hand over its event: no more than that.
    assert len(js.execution_history) <= 1 + 4 + 1
    rest = list(stream)
    values = [e.data["data"]["value"] for e in rest if e.kind == "emitted"]
    assert values == list(range(200)) * 2
    assert rest[-1].kind == "job_finished"
    assert js.status == "completed"
    # The final event is booked under the job's lock and never waits: one over the bound.
    assert stream.buffer.peak <= 4 + 1


def test_leaving_the_loop_leaves_the_job_running(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    chain(flow, 1)
    stream = flow.stream("e", {"items": list(range(50))}, buffer_size=1)
    for event in stream:
        if event.kind == "emitted":
            break
    stream.close()
    assert stream.job_state.wait_for_completion(WAIT), "the job stayed held by a closed stream"
    assert stream.job_state.status == "completed"
    assert list(stream) == []


def test_cancelling_inside_the_loop_ends_the_stream(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    chain(flow, 1)
    stream = flow.stream("e", {"items": list(range(50))}, buffer_size=2)
    events = []
    for event in stream:
        events.append(event)
        if event.kind == "emitted":
            flow.cancel(stream.job_state)
    assert events[-1].kind == "job_finished"
    assert events[-1].data == {"status": "cancelled"}
    assert events[-1].job_state is stream.job_state


class PauseOnce(Routine):
    """Pauses its own job the first time it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        if not self.paused:
            self.paused = True
            flow = ctx.flow
            assert flow is not None
            flow.pause(ctx.job_state, reason="review")
        self.emit("out", value=value)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_pause_ends_the_stream_and_stream_resume_goes_on(make_flow: Any, strategy: str) -> None:
    flow = make_flow(execution_strategy=strategy, max_workers=2)
    flow.add_routine(Emitter(), "e")
    flow.add_routine(PauseOnce(), "p")
    flow.connect("e", "out", "p", "input")
    first = list(flow.stream("e", {"items": [1, 2, 3]}))
    last = first[-1]
    assert last.kind == "paused"
    assert last.job_state is not None
    js = last.job_state
    assert js.status == "paused"
    assert last.data["reason"] == "review"
    assert last.data["pending"] == len(js.pending_tasks) > 0
    # The handler that paused its job went on: its emit comes before the paused event.
    assert ("emitted", "p") in [(e.kind, e.routine_id) for e in first]

    second = list(flow.stream_resume(js))
    assert brief(second[:1]) == [("resumed", None, {"from": "paused"})]
    assert second[-1].kind == "job_finished"
    assert second[-1].job_state is js
    assert js.status == "completed"
    emitted = [
        e.data["data"]["value"]
        for e in first + second
        if e.kind == "emitted" and e.routine_id == "p"
    ]
    assert sorted(emitted) == [1, 2, 3]


class FailOnce(Routine):
    """Fails its first call, then passes its input on."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            msg = "flaky"
            raise ConnectionError(msg)
        self.emit("out", value=value)


def test_errors_and_retries_are_events(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    flow.add_routine(Emitter(), "e")
    flaky = FailOnce()
    flaky.set_error_handler(
        ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=0.0)
    )
    flow.add_routine(flaky, "f")
    flow.connect("e", "out", "f", "input")
    events = [(e.kind, e.routine_id, e.data) for e in flow.stream("e", {"value": 7})]
    f_events = [x for x in events if x[1] == "f"]
    assert f_events == [
        ("activation_started", "f", {"slot": "input", "attempt": 1}),
        (
            "error",
            "f",
            {
                "slot": "input",
                "error_type": "ConnectionError",
                "message": "flaky",
                "strategy": "retry",
            },
        ),
        ("retry_scheduled", "f", {"slot": "input"}),
        ("activation_started", "f", {"slot": "input", "attempt": 2}),
        ("emitted", "f", {"event": "out", "data": {"value": 7}}),
    ]
    assert events[-1] == ("job_finished", None, {"status": "completed"})


def test_on_event_gets_the_stream_events(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    chain(flow, 1)
    seen: list[StreamEvent] = []
    js = flow.execute("e", {"items": [1]}, on_event=seen.append)
    streamed = list(flow.stream("e", {"items": [1]}))
    assert brief(seen) == brief(streamed)
    assert seen[-1].job_state is js


class AsyncStep(Routine):
    """An ``async def`` handler that records the thread it ran on and passes its input on."""

    def __init__(self, threads: list[str]) -> None:
        super().__init__()
        self.threads = threads
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    async def take(self, value: Any = None, **_: Any) -> None:
        await asyncio.sleep(0)
        self.threads.append(threading.current_thread().name)
        self.emit("out", value=value)


def test_astream_inside_a_running_loop(make_flow: Any) -> None:
    threads: list[str] = []
    flow = make_flow(execution_strategy="concurrent", max_workers=2)
    flow.add_routine(Emitter(), "e")
    flow.add_routine(AsyncStep(threads), "a")
    flow.connect("e", "out", "a", "input")

    async def main() -> tuple[list[StreamEvent], str, JobState]:
        stream = flow.astream("e", {"items": [1, 2, 3]}, buffer_size=2)
        events = [event async for event in stream]
        return events, threading.current_thread().name, stream.job_state

    result: dict[str, Any] = {}

    def app() -> None:
        result["out"] = asyncio.run(main())

    thread = threading.Thread(target=app, name="app-loop", daemon=True)
    thread.start()
    thread.join(WAIT * 3)
    assert not thread.is_alive(), "the async stream never ended"
    events, loop_thread, js = result["out"]
    assert js.status == "completed"
    assert events[-1].kind == "job_finished"
    values = [
        e.data["data"]["value"] for e in events if e.kind == "emitted" and e.routine_id == "a"
    ]
    assert sorted(values) == [1, 2, 3]
    assert threads == [loop_thread] * 3  # the async handlers ran on the caller's loop


def test_stream_refusals(make_flow: Any) -> None:
    flow = make_flow()
    chain(flow, 1)
    with pytest.raises(ConfigurationError, match="buffer_size"):
        flow.stream("e", buffer_size=0)
    with pytest.raises(ConfigurationError, match="on_event"):
        flow.stream("e", on_event=print)
    with pytest.raises(ExecutionContextError, match="astream"):
        flow.astream("e")

    async def on_loop() -> None:
        flow.stream("e")

    with pytest.raises(ExecutionContextError, match="astream"):
        asyncio.run(on_loop())


def test_flow_methods_exist_on_flow() -> None:
    flow = Flow()
    assert callable(flow.stream)
    assert callable(flow.astream)
    assert callable(flow.stream_resume)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_pausing_from_the_loop_while_the_job_waits_for_the_consumer(
    make_flow: Any, strategy: str
) -> None:
    flow = make_flow(execution_strategy=strategy, max_workers=3)
    chain(flow, 1)
    stream = flow.stream("e", {"items": list(range(100))}, buffer_size=2)
    first = next(stream)
    wait_until(lambda: len(stream.buffer) == 2, WAIT, "the job to fill the buffer")
    # The job's handler waits for the consumer, and the consumer pauses the job, which
    # waits for that handler: the pause releases it.
    flow.pause(stream.job_state, reason="enough")
    rest = list(stream)
    assert first.kind == "job_started"
    assert rest[-1].kind == "paused"
    js = stream.job_state
    assert js.status == "paused"
    emitted = [e for e in rest if e.kind == "emitted"]
    booked = [r for r in js.execution_history if r.event_name == "out"]
    assert len(emitted) == len(booked)  # nothing lost while the job wound down
    assert rest[-1].data["pending"] == len(js.pending_tasks)


def test_a_retried_job_streams_through_on_event(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    flow.add_routine(Emitter(), "e")
    flaky = FailOnce()
    flaky.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
    flow.add_routine(flaky, "f")
    flow.connect("e", "out", "f", "input")
    failed = list(flow.stream("e", {"value": 1}))
    assert failed[-1].data == {"status": "failed"}
    assert ("error", "f") in [(e.kind, e.routine_id) for e in failed]
    js = failed[-1].job_state
    assert js is not None
    seen: list[StreamEvent] = []
    flow.retry(js, on_event=seen.append)
    assert js.wait_for_completion(WAIT), "the retried job never finished"
    assert brief(seen) == [
        ("resumed", None, {"from": "failed"}),
        ("activation_started", "f", {"slot": "input", "attempt": 1}),
        ("emitted", "f", {"event": "out", "data": {"value": 1}}),
        ("job_finished", None, {"status": "completed"}),
    ]


def test_kinds_keeps_only_those_events_and_the_last(make_flow: Any) -> None:
    flow = make_flow(execution_strategy="sequential")
    flow.add_routine(Fan(), "src")
    events = list(flow.stream("src", {"count": 3}, kinds={"output"}))
    assert brief(events) == [
        ("output", "src", {"output_type": "seen", "data": {"value": 0}}),
        ("job_finished", None, {"status": "completed"}),
    ]
    with pytest.raises(ConfigurationError, match="unknown event kinds"):
        flow.stream("src", kinds={"outputs"})

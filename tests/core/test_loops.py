"""
The loops that run a job's queue (``engine/_loops.py``): the blocking sequential
``execute``, which runs the job on the caller's thread, and the pool workers, which share
their threads between jobs. What a caller of either relies on: a cancel or a pause from
another thread ends the wait at once, a fatal error reaches the caller of the blocking
``execute``, work emitted from another thread runs at once, a job is handed on to waiting
jobs only when it has work left, and ``async def`` handlers count for checkpoints as sync
ones do.

Every wait is bounded (``WAIT`` seconds) and fails naming what did not happen: a loop that
never returns fails its test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from helpers import Emitter, Gate, Relay, wait_until, within

from routilux import ErrorHandler, Flow, JobState, Routine
from routilux.engine._loops import _BUDGET


WAIT = 10.0
"""Seconds a test waits at most for anything (never reached when green)."""


def in_background(what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """
    Start ``call(*args, **kwargs)`` on a daemon thread; return a function that waits at most
    ``WAIT`` s for its result (raising its exception) and fails naming ``what`` after that.
    """
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(call(*args, **kwargs))
        except BaseException as exc:  # raised again by result()
            future.set_exception(exc)

    threading.Thread(target=target, name=what, daemon=True).start()

    def result() -> Any:
        try:
            return future.result(WAIT)
        except TimeoutError:
            msg = f"timed out after {WAIT} s waiting for {what}"
            raise AssertionError(msg) from None

    return result


def gated_flow(make_flow: Callable[..., Flow], strategy: str = "sequential") -> tuple[Flow, Gate]:
    """A flow ``g -> r``: the gate ``g`` blocks until released, then the relay ``r`` runs."""
    flow = make_flow(execution_strategy=strategy)
    gate = Gate()
    flow.add_routine(gate, "g")
    flow.add_routine(Relay(), "r")
    flow.connect("g", "out", "r", "input")
    return flow, gate


def relayed(js: JobState) -> list[Any]:
    """The values the relay of ``gated_flow`` received."""
    return [entry["value"] for entry in js.shared_log]


def test_a_cancel_from_another_thread_ends_a_blocking_sequential_execute(
    make_flow: Callable[..., Flow],
) -> None:
    """A job cancelled while its blocking execute runs a handler: once the handler returns,
    the execute returns the cancelled job, and nothing the handler emitted runs."""
    flow, gate = gated_flow(make_flow)
    js = JobState(flow.flow_id)
    execute = in_background("the blocking execute to return", flow.execute, "g", job_state=js)
    assert gate.entered.wait(WAIT), "the handler never started"
    flow.cancel(js)
    gate.release.set()
    assert js is execute()
    assert "cancelled" == js.status
    assert [] == relayed(js)


@pytest.mark.parametrize("lane", ["blocking execute", "submit"])
def test_a_pause_from_outside_returns_once_the_running_handler_returns(
    make_flow: Callable[..., Flow], lane: str
) -> None:
    """``flow.pause`` from another thread waits for the running handler and no longer
    (whether the job runs on the caller of a blocking execute or on a pool worker); what
    the handler emitted meanwhile runs on resume."""
    flow, gate = gated_flow(make_flow)
    js = JobState(flow.flow_id)
    if lane == "submit":
        flow.submit("g", {"value": 1}, job_state=js)
        execute = None
    else:
        execute = in_background(
            "the blocking execute to return", flow.execute, "g", {"value": 1}, job_state=js
        )
    assert gate.entered.wait(WAIT), "the handler never started"
    pause = in_background("flow.pause to return", flow.pause, js)
    wait_until(lambda: "paused" == js.status, WAIT, "the job to be paused")
    gate.release.set()
    pause()  # it returns once the handler has returned
    if execute is not None:
        assert js is execute()
    assert "paused" == js.status
    assert [] == relayed(js)
    flow.resume(js)
    assert js.wait_for_completion(WAIT), f"the resumed job is still {js.status}"
    assert "completed" == js.status
    assert [1] == relayed(js)


class _Fatal(BaseException):
    """A fatal error of a handler (as KeyboardInterrupt or SystemExit are)."""


class _Dies(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.take)

    def take(self, **_: Any) -> None:
        raise _Fatal("fatal")


def test_a_fatal_error_reaches_the_caller_of_a_blocking_execute_after_the_job_failed(
    make_flow: Callable[..., Flow],
) -> None:
    """A BaseException of a handler run by a blocking sequential execute is raised again to
    its caller, and by then the job has failed and finished (its waiters are released)."""
    flow = make_flow(execution_strategy="sequential")
    flow.add_routine(_Dies(), "d")
    js = JobState(flow.flow_id)
    with pytest.raises(_Fatal, match="fatal"):
        within(WAIT, "the blocking execute to raise", flow.execute, "d", job_state=js)
    assert "failed" == js.status
    assert js.wait_for_completion(0), "the failed job was not finished when execute raised"


class _Sink(Routine):
    """Calls ``see(value)`` with each value it receives."""

    def __init__(self, see: Callable[[Any], None]) -> None:
        super().__init__()
        self.see = see
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        self.see(value)


ROUNDS = 3
"""Emits of the helper thread of ``_HandsOff``, each once the one before has run."""


class _HandsOff(Routine):
    """Starts a helper thread (in the handler's context), then fails: its retry waits on
    the timer, far off. The helper emits ``out`` ``ROUNDS`` times, each once told to by
    ``go`` (the test, then the sink of each emit: by then the job waits again). What the
    sink got is kept in ``received``, and ``all_ran`` is set once it got all."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.calls = 0
        self.received: list[Any] = []
        self.all_ran = threading.Event()
        self.define_slot("trigger", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, **_: Any) -> None:
        self.calls += 1
        helper = contextvars.copy_context()
        threading.Thread(target=helper.run, args=(self._later,), daemon=True).start()
        msg = "failed after handing work to a helper thread"
        raise RuntimeError(msg)

    def _later(self) -> None:
        for value in range(ROUNDS):
            if not self.go.wait(WAIT):
                return
            self.go.clear()
            self.emit("out", value=value)


def _helper_emits(flow: Flow) -> _HandsOff:
    # "h" fails and waits 60 s for its retry; meanwhile the thread its handler started
    # emits ROUNDS times to "s", each time once the last has run.
    source = _HandsOff()
    source.set_error_handler(ErrorHandler("retry", max_retries=1, retry_delay=60.0))

    def see(value: Any) -> None:
        source.received.append(value)
        if len(source.received) == ROUNDS:
            source.all_ran.set()
        source.go.set()  # the helper emits again while the job waits

    flow.add_routine(source, "h")
    flow.add_routine(_Sink(see), "s")
    flow.connect("h", "out", "s", "input")
    return source


def _check_helper_emits(js: JobState, source: _HandsOff) -> None:
    # Once "h" waits for its retry, all the helper thread emits runs, before the retry.
    wait_until(
        lambda: js.routine_states.get("h", {}).get("status") == "retrying",
        WAIT,
        "the handler to fail and wait for its retry",
    )
    source.go.set()
    received = source.received
    assert source.all_ran.wait(WAIT), f"of what the helper thread emitted, only {received} ran"
    assert list(range(ROUNDS)) == received
    assert 1 == source.calls  # its retry has not come: the emitted work did not wait for it


def test_work_emitted_from_another_thread_runs_while_the_blocking_execute_waits(
    make_flow: Callable[..., Flow],
) -> None:
    """A blocking sequential execute waiting for a retry's timer runs what another thread
    emits for the job at once, not when the retry comes."""
    flow = make_flow(execution_strategy="sequential")
    source = _helper_emits(flow)
    js = JobState(flow.flow_id)
    execute = in_background("the blocking execute to return", flow.execute, "h", job_state=js)
    _check_helper_emits(js, source)
    flow.cancel(js)
    assert js is execute()
    assert "cancelled" == js.status


class _GatedEmitter(Emitter):
    """An Emitter that waits for ``go`` before it emits."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()

    def fire(self, items: Any = None, value: Any = None, **kw: Any) -> None:
        self.entered.set()
        assert self.go.wait(WAIT), "the test never let the emitter go"
        super().fire(items, value, **kw)


def test_a_job_whose_work_ends_with_its_budget_finishes_before_the_waiting_job_runs(
    make_flow: Callable[..., Flow],
) -> None:
    """With one worker, a job whose last activation is the last of its fairness budget
    (its entry included) finishes at once: it is not handed on behind the job waiting for
    the worker, which sees it completed."""
    flow = make_flow(execution_strategy="sequential", max_workers=1)
    long_entry = _GatedEmitter()
    seen: list[str] = []
    jobs: list[JobState] = []
    flow.add_routine(long_entry, "long")
    flow.add_routine(_Sink(lambda _value: None), "long_sink")
    flow.connect("long", "out", "long_sink", "input")
    flow.add_routine(Emitter(), "short")
    flow.add_routine(_Sink(lambda _value: seen.append(jobs[0].status)), "short_sink")
    flow.connect("short", "out", "short_sink", "input")
    jobs.append(flow.submit("long", {"items": list(range(_BUDGET - 1))}))
    assert long_entry.entered.wait(WAIT), "the long job never started"
    short_job = flow.submit("short", {"value": "s"})
    long_entry.go.set()
    assert short_job.wait_for_completion(WAIT), f"the short job is still {short_job.status}"
    assert jobs[0].wait_for_completion(WAIT), f"the long job is still {jobs[0].status}"
    assert ["completed"] == seen


class _Step(Routine):
    """Emits ``out`` with ``value + 1`` while ``value < 3``; sync or ``async def``."""

    def __init__(self, is_async: bool) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.arun if is_async else self.run)
        self.define_event("out", ["value"])

    def run(self, value: int = 0, **_: Any) -> None:
        if value < 3:
            self.emit("out", value=value + 1)

    async def arun(self, value: int = 0, **_: Any) -> None:
        await asyncio.sleep(0)
        self.run(value)


def test_async_handlers_count_for_checkpoints_as_sync_ones(
    make_flow: Callable[..., Flow],
) -> None:
    """With ``checkpoint_every=1``, a sequential job of ``async def`` handlers is
    checkpointed as often as the same job of sync handlers: after each activation, and once
    finished. (A concurrent job's checkpoints wait until nothing runs, so overlapping
    coroutines share one.)"""
    counts = {}
    for is_async in (False, True):
        flow = make_flow(execution_strategy="sequential")
        flow.add_routine(_Step(is_async), "s")
        flow.connect("s", "out", "s", "trigger")
        taken: list[int] = []
        js = flow.submit(
            "s",
            checkpoint=lambda _js, document, taken=taken: taken.append(document["checkpoint_seq"]),
            checkpoint_every=1,
        )
        assert js.wait_for_completion(WAIT), f"the job is still {js.status}"
        assert "completed" == js.status
        counts["async" if is_async else "sync"] = len(taken)
    assert {"sync": 5, "async": 5} == counts


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_work_emitted_from_another_thread_runs_while_a_pool_job_waits(
    make_flow: Callable[..., Flow], strategy: str
) -> None:
    """A submitted job waiting for a retry's timer runs what a thread its handler started
    emits at once, on the pool, not when the retry comes: that thread is no worker of the
    job, though it runs in the handler's context."""
    flow = make_flow(execution_strategy=strategy)
    source = _helper_emits(flow)
    js = flow.submit("h")
    _check_helper_emits(js, source)
    flow.cancel(js)
    assert js.wait_for_completion(WAIT), f"job still {js.status}"
    assert "cancelled" == js.status

"""
run_job and its helpers as a user of a job store relies on them: the run options kept with
a job and those given to one run, the store's control requests, the handles of the local
executor. Every wait is bounded: a run that never ends fails its test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import run_job_within, wait_until

from routilux import Flow, Routine
from routilux.exceptions import ConfigurationError, JobStateError
from routilux.registry import get_routine_class, register_routine
from routilux.store import (
    BaseJobHandle,
    LocalJobExecutor,
    SqliteJobStore,
    create_job,
    run_job,
    run_options,
)


WAIT = 10.0


class _Items(Routine):
    """Entry: emits ``item`` for 0..n-1; pauses its job first when ``pause``."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(pause=False)
        self.define_slot("trigger", handler=self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 3, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        for i in range(n):
            self.emit("item", i=i)
        if self.get_config("pause") and not ctx.job_state.get_shared_data("resumed"):
            ctx.job_state.update_shared_data("resumed", True)
            ctx.flow.pause(ctx.job_state, reason="asked")


class _Take(Routine):
    """Adds what it gets to shared_data["seen"]."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("seen", lambda v: [*(v or []), i])


class _Loop(Routine):
    """Emits ``again`` to itself, a few times a second, for ``WAIT`` seconds: the job ends
    before that only when it is cancelled or paused."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_slot("input", handler=self.go)
        self.define_event("again", ["i", "until"])

    def go(self, i: int = 0, until: float | None = None, **_: Any) -> None:
        until = time.monotonic() + WAIT if until is None else until
        threading.Event().wait(0.01)  # a step of work, so the loop does not spin
        if time.monotonic() < until:
            self.emit("again", i=i + 1, until=until)


class _Slow(Routine):
    """Entry: one activation during which the job's clock moves on by two seconds."""

    clock = [0.0]

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> None:
        _Slow.clock[0] += 2.0


class _Async(Routine):
    """A coroutine handler: records in shared_data["a_done"] once it has finished."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    async def take(self, i: int = 0, **_: Any) -> None:
        await asyncio.sleep(0.2)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("a_done", True)


class _After(Routine):
    """Records in shared_data["b_saw"] whether the coroutine before it had finished."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data("b_saw", js.get_shared_data("a_done", False))


class _Interrupt(Routine):
    """Entry: sends SIGINT (Ctrl-C) to the process, then works on for a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self, **_: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(0.3)  # the caller's KeyboardInterrupt comes meanwhile


def _register(cls: type[Routine], name: str) -> None:
    try:
        get_routine_class(name)
    except LookupError:
        register_routine(cls, name=name)


for _cls, _name in (
    (_Slow, "tests.runner.Slow"),
    (_Async, "tests.runner.Async"),
    (_After, "tests.runner.After"),
    (_Interrupt, "tests.runner.Interrupt"),
    (_Items, "tests.runner.Items"),
    (_Take, "tests.runner.Take"),
    (_Loop, "tests.runner.Loop"),
):
    _register(_cls, _name)


def _flow(**items_config: Any) -> Flow:
    flow = Flow("runner", execution_strategy="sequential")
    items = _Items()
    items.set_config(**items_config)
    flow.add_routine(items, "src")
    flow.add_routine(_Take(), "take")
    flow.connect("src", "item", "take", "input")
    return flow


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with SqliteJobStore(tmp_path / "jobs.db", keep_checkpoints=None) as s:
        yield s


def test_run_options_are_what_a_job_keeps() -> None:
    """run_options gives the options create_job keeps: checkpoint_every (never negative)
    and the strategy when one is given."""
    assert {"checkpoint_every": 0} == run_options()
    assert {"checkpoint_every": 0} == run_options(checkpoint_every=-3)
    assert {"checkpoint_every": 5, "execution_strategy": "sequential"} == run_options(
        execution_strategy="sequential", checkpoint_every=5
    )


def test_handles_name_their_kind_and_job(store: SqliteJobStore) -> None:
    """A handle's repr is Kind[job id]: JobHandle for the base, LocalJobHandle for the
    local executor's."""
    assert "JobHandle[j1]" == repr(BaseJobHandle("j1"))
    assert "j1" == BaseJobHandle("j1").job_id
    job_id = create_job(store, _flow(), "src", {"n": 1})
    executor = LocalJobExecutor(store, max_workers=1)
    try:
        handle = executor.submit_job(job_id)
        assert f"LocalJobHandle[{job_id}]" == repr(handle)
        assert "completed" == handle.wait(WAIT).status
    finally:
        executor.shutdown(wait=False)


@pytest.mark.parametrize(
    ("options", "given", "checkpoints"),
    [
        ({}, {}, 1),  # only at rest
        ({}, {"checkpoint_every": 1}, 5),  # after each of the 4 activations, and at rest
        (run_options(checkpoint_every=1), {}, 5),  # the job's own option
        (run_options(checkpoint_every=1), {"checkpoint_every": 0}, 1),  # the run's wins
        ({"checkpoint_interval": 1e-9}, {}, 5),  # each activation ends past the interval
        ({}, {"checkpoint_interval": 1e-9}, 5),
        ({"checkpoint_interval": 1e-9}, {"checkpoint_interval": 0}, 1),
    ],
)
def test_checkpoints_come_as_the_job_or_the_run_asks(
    store: SqliteJobStore, options: dict[str, Any], given: dict[str, Any], checkpoints: int
) -> None:
    """run_job checkpoints as the job's options say (checkpoint_every, checkpoint_interval),
    unless the run gives its own; without either, once, when the job rests."""
    job_id = create_job(store, _flow(), "src", {"n": 3}, options=options)
    state = run_job_within(job_id, store, **given)
    assert ("completed", [0, 1, 2]) == (state.status, state.shared_data["seen"])
    assert checkpoints == len(store.checkpoints(job_id))
    assert "completed" == store.checkpoints(job_id)[-1].status


@pytest.mark.parametrize("request_", ["cancel", "pause"])
def test_run_job_obeys_the_stores_control_requests(store: SqliteJobStore, request_: str) -> None:
    """By default run_job reads the job's control requests from its store: a job that
    would run for ever stops at the request (routilux cancel or pause from elsewhere)."""
    flow = Flow("loop")
    flow.add_routine(_Loop(), "loop")
    flow.connect("loop", "again", "loop", "input")
    job_id = create_job(store, flow, "loop")

    def ask() -> None:  # as routilux cancel (or pause) does from another process
        wait_until(lambda: store.load_job(job_id).status == "running", WAIT, "the job to run")
        store.request_control(job_id, request_)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    state = run_job_within(job_id, store, timeout=WAIT / 2)
    asker.join(WAIT)
    expected = {"cancel": "cancelled", "pause": "paused"}[request_]
    assert (expected, expected) == (state.status, store.load_job(job_id).status)


def test_a_local_handle_cancels_a_paused_job_at_once(store: SqliteJobStore) -> None:
    """cancel() of a LocalJobExecutor handle settles a job that is not running (here:
    paused) at once: no runner would read a request."""
    job_id = create_job(store, _flow(pause=True), "src", {"n": 2})
    executor = LocalJobExecutor(store, max_workers=1)
    try:
        handle = executor.submit_job(job_id)
        assert "paused" == handle.wait(WAIT).status
        handle.cancel()
        assert "cancelled" == handle.status()
        assert "cancelled" == store.load_job(job_id).status
    finally:
        executor.shutdown(wait=False)


@pytest.mark.parametrize(
    ("status", "retry"), [("cancelled", False), ("failed", False), ("cancelled", True)]
)
def test_run_job_refuses_a_job_at_rest_naming_its_status(
    store: SqliteJobStore, status: str, retry: bool
) -> None:
    """run_job of a job its status does not let run raises JobStateError naming the job,
    the status and the refused action, and leaves the job as it was."""
    job_id = create_job(store, _flow(), "src", {"n": 1})
    store.set_status(job_id, status)
    with pytest.raises(JobStateError) as info:
        run_job_within(job_id, store, retry=retry)
    action = "retry" if retry else "resume"
    assert (job_id, status, action) == (info.value.job_id, info.value.status, info.value.action)
    assert status == store.load_job(job_id).status


@pytest.mark.parametrize("deadline", [0, -1, "soon"])
def test_run_job_refuses_a_bad_deadline_before_touching_the_job(
    store: SqliteJobStore, deadline: Any
) -> None:
    """A deadline that is not a number of seconds > 0 is refused before the job is claimed:
    the job stays pending, on its first attempt, and then runs."""
    job_id = create_job(store, _flow(), "src", {"n": 1})
    with pytest.raises(ConfigurationError, match="deadline"):
        run_job_within(job_id, store, deadline=deadline)
    record = store.load_job(job_id)
    assert ("pending", 0, None) == (record.status, record.attempt, record.state)
    assert "completed" == run_job_within(job_id, store).status


def test_no_checkpoint_interval_means_no_time_driven_checkpoint(
    store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job without checkpoint_interval is checkpointed only at rest, however long its
    activations take (here its clock moves on by two seconds during one)."""
    _Slow.clock = [0.0]
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + _Slow.clock[0])
    flow = Flow("slow")
    flow.add_routine(_Slow(), "slow")
    job_id = create_job(store, flow, "slow")
    assert "completed" == run_job_within(job_id, store).status
    assert 2.0 == _Slow.clock[0], "the activation did not run"
    assert ["completed"] == [c.status for c in store.checkpoints(job_id)]


def test_run_job_runs_the_job_with_its_own_strategy(store: SqliteJobStore) -> None:
    """A job created with execution_strategy="sequential" runs sequentially in a
    concurrent flow: an activation starts only once the one before it (a coroutine) has
    finished."""
    flow = Flow("strategy", execution_strategy="concurrent", max_workers=2)
    flow.add_routine(_Items(), "src")
    flow.add_routine(_Async(), "a")
    flow.add_routine(_After(), "b")
    flow.connect("src", "item", "a", "input")
    flow.connect("src", "item", "b", "input")
    options = run_options(execution_strategy="sequential")
    job_id = create_job(store, flow, "src", {"n": 1}, options=options)
    state = run_job_within(job_id, store)
    assert "completed" == state.status
    assert {"a_done": True, "b_saw": True} == state.shared_data


def test_run_job_interrupted_waits_for_its_job_to_rest(store: SqliteJobStore) -> None:
    """Ctrl-C while run_job waits raises KeyboardInterrupt only once the job rests, its
    last checkpoint written: the flow's shared workers are not left running it."""
    flow = Flow("interrupt")
    flow.add_routine(_Interrupt(), "stop")
    job_id = create_job(store, flow, "stop")
    # Python ignores SIGINT when started with it ignored (in the background: nohup, &, as
    # tools/mutation.py runs the tests), and then no KeyboardInterrupt would ever come.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_job(job_id, store)  # on the main thread, which receives SIGINT
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "completed" == store.load_job(job_id).status

"""
run_job and its helpers as a user of a job store relies on them: the run options kept with
a job and those given to one run, the store's control requests, the handles of the local
executor. Every wait is bounded: a run that never ends fails its test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import run_job_within, wait_until

from routilux import Flow, Routine
from routilux.registry import get_routine_class, register_routine
from routilux.store import (
    BaseJobHandle,
    LocalJobExecutor,
    SqliteJobStore,
    create_job,
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
    """Emits ``again`` to itself for ever: the job ends only when cancelled or paused."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_slot("input", handler=self.go)
        self.define_event("again", ["i"])

    def go(self, i: int = 0, **_: Any) -> None:
        self.emit("again", i=i + 1)


def _register(cls: type[Routine], name: str) -> None:
    try:
        get_routine_class(name)
    except LookupError:
        register_routine(cls, name=name)


for _cls, _name in (
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
    state = run_job_within(job_id, store)
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

"""
An error on the engine's or the store's own path (not in a handler) fails the job, with an
error naming it; it never leaves the job, or whoever waits for it, waiting.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import chain

from routilux import Flow
from routilux.engine import _checkpoints
from routilux.engine._control import JobControl
from routilux.store import SqliteJobStore, create_job, load_job_state, run_job


class _BrokenControl(JobControl):
    """A control whose store read fails (a store gone, a network error)."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self) -> str | None:
        self.polls += 1
        msg = "control store gone"
        raise OSError(msg)


def _engine_errors(js: Any) -> list[tuple[str, str]]:
    return [(e.error_type, e.message) for e in js.errors if e.routine_id == ""]


@pytest.mark.parametrize("strategy", ["concurrent", "sequential"])
def test_a_control_that_raises_fails_the_submitted_job(strategy: str) -> None:
    flow = Flow(execution_strategy=strategy)
    chain(flow, 2)
    control = _BrokenControl()
    try:
        js = flow.submit("e", {"items": [1, 2]}, control=control)
        assert js.wait_for_completion(5), f"job stranded after its control raised: {js.status}"
        assert "failed" == js.status
        assert [("OSError", "the engine failed: control store gone")] == _engine_errors(js)
        assert 1 == control.polls, "a control that raised is read again"
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_a_control_that_raises_fails_the_draining_execute() -> None:
    """The blocking sequential execute runs the job on the caller: it returns it failed."""
    flow = Flow(execution_strategy="sequential")
    chain(flow, 2)
    try:
        js = flow.execute("e", {"items": [1]}, control=_BrokenControl())
        assert "failed" == js.status
        assert js.wait_for_completion(5), "the failed job is not finished"
        assert [("OSError", "the engine failed: control store gone")] == _engine_errors(js)
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_a_checkpoint_function_that_raises_fails_the_job() -> None:
    flow = Flow()
    chain(flow, 3)
    calls: list[str] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        calls.append(document["status"])
        msg = "disk full"
        raise RuntimeError(msg)

    try:
        js = flow.submit("e", {"items": [1, 2]}, checkpoint=checkpoint, checkpoint_every=1)
        assert js.wait_for_completion(5), f"job stranded after its checkpoint raised: {js.status}"
        assert js.wait_settled(5), "job not settled after its checkpoint raised"
        assert "failed" == js.status
        assert [("RuntimeError", "checkpoint failed: disk full")] == _engine_errors(js)
        assert 1 == len(calls), f"checkpoints went on after one raised: {calls}"
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_a_snapshot_that_cannot_be_taken_fails_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot that raises (not a SerializationError) fails the job; no waiter waits for
    a checkpoint that will never come."""

    def broken(*_: Any, **__: Any) -> Any:
        msg = "snapshot bug"
        raise ValueError(msg)

    monkeypatch.setattr(_checkpoints, "dump_job_state", broken)
    flow = Flow()
    chain(flow, 2)
    try:
        js = flow.submit("e", {"items": [1]}, checkpoint=lambda *_: True, checkpoint_every=1)
        assert js.wait_for_completion(5), f"job stranded after a snapshot raised: {js.status}"
        assert js.wait_settled(5), "job waits for a checkpoint that cannot be taken"
        assert "failed" == js.status
        assert [("ValueError", "the engine failed: snapshot bug")] == _engine_errors(js)
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_run_job_with_a_failing_store_read_fails_the_job(tmp_path: Path) -> None:
    """run_job's control reads the store; when that read raises, the job fails and its
    failure is the stored status (the checkpoint writes still work)."""

    class _Store(SqliteJobStore):
        def get_control_request(self, job_id: str) -> str | None:
            msg = "control table unreadable"
            raise OSError(msg)

    store = _Store(tmp_path / "jobs.db")
    try:
        flow = Flow("f")
        chain(flow, 2)
        job_id = create_job(store, flow.serialize(), "e", {"items": [1, 2]})
        done: list[Any] = []
        thread = threading.Thread(target=lambda: done.append(run_job(job_id, store)), daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "run_job still waits for a job its store read failed"
        (js,) = done
        assert "failed" == js.status
        assert "failed" == store.load_job(job_id).status
        stored = load_job_state(store, job_id)[1]
        assert [("OSError", "the engine failed: control table unreadable")] == _engine_errors(
            stored
        )
    finally:
        store.close()

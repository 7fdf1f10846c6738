"""
Behaviour a mutation run of the engine showed no test held: the fairness budget between
jobs, the final checkpoint before a job counts as finished, run_job's refusal of a job
running elsewhere.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import Emitter, run_job_within

from routilux import Flow, Routine
from routilux.engine._loops import _BUDGET
from routilux.exceptions import InvalidStateError
from routilux.store import SqliteJobStore, create_job


class _Record(Routine):
    """Appends (tag, value) to the class-wide log."""

    log: list[tuple[str, Any]] = []

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        _Record.log.append((self.tag, value))


class _GatedEmitter(Emitter):
    """An Emitter that waits for ``go`` before it emits."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()

    def fire(self, items: Any = None, value: Any = None, **kw: Any) -> None:
        self.entered.set()
        assert self.go.wait(10), "the test never let the emitter go"
        super().fire(items, value, **kw)


def test_a_long_job_hands_its_worker_to_a_waiting_job_every_budget() -> None:
    """With one worker, a job waiting for it runs after exactly one budget of activations
    of the long job (its entry included), not after the long job, nor at once."""
    _Record.log = []
    flow = Flow(execution_strategy="sequential", max_workers=1)
    long_entry = _GatedEmitter()
    flow.add_routine(long_entry, "long")
    flow.add_routine(_Record("long"), "long_sink")
    flow.connect("long", "out", "long_sink", "input")
    flow.add_routine(Emitter(), "short")
    flow.add_routine(_Record("short"), "short_sink")
    flow.connect("short", "out", "short_sink", "input")
    try:
        long_job = flow.submit("long", {"items": list(range(3 * _BUDGET))})
        assert long_entry.entered.wait(10), "the long job never started"
        short_job = flow.submit("short", {"value": "s"})
        long_entry.go.set()
        assert short_job.wait_for_completion(10), f"short job still {short_job.status}"
        assert long_job.wait_for_completion(10), f"long job still {long_job.status}"
        position = _Record.log.index(("short", "s"))
        assert _BUDGET - 1 == position, f"the waiting job ran after {position} activations"
        assert 3 * _BUDGET == sum(1 for tag, _ in _Record.log if tag == "long")
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_a_job_is_not_finished_before_its_final_checkpoint_is_written(strategy: str) -> None:
    """While the checkpoint function writes the completed job, the job is neither finished
    nor settled for its waiters; once written, it is both."""
    flow = Flow(execution_strategy=strategy)
    flow.add_routine(Emitter(), "e")
    seen: list[tuple[str, bool, bool]] = []
    holder: list[Any] = []

    def checkpoint(js: Any, document: dict[str, Any]) -> bool:
        seen.append((document["status"], js.wait_for_completion(0), js.wait_settled(0)))
        return True

    try:
        js = flow.submit("e", {"value": 1}, checkpoint=checkpoint)
        holder.append(js)
        assert js.wait_for_completion(10), f"job still {js.status}"
        assert js.wait_settled(10), "job not settled"
        assert [("completed", False, False)] == seen
    finally:
        flow.shutdown(wait=False)  # after a failure, never wait for a stranded job


def test_run_job_refuses_a_job_running_elsewhere_unless_taken_over(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path / "jobs.db")
    try:
        flow = Flow("f")
        flow.add_routine(Emitter(), "e")
        job_id = create_job(store, flow.serialize(), "e", {"value": 1})
        store.claim_job(job_id, worker="host-a:1")
        with pytest.raises(InvalidStateError, match=r"it is running on host-a:1; take it over"):
            run_job_within(job_id, store)
        assert ("running", "host-a:1") == (
            store.load_job(job_id).status,
            store.load_job(job_id).worker,
        )
        js = run_job_within(job_id, store, takeover=True, worker="host-b:2")
        assert "completed" == js.status
        assert ("completed", "host-b:2") == (
            store.load_job(job_id).status,
            store.load_job(job_id).worker,
        )
    finally:
        store.close()

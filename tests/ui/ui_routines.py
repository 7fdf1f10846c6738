"""
Routines and jobs of the routilux-ui tests.

The approval example, a job that runs until it is stopped, a job that fails, and a job whose
data holds markup.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.registry import is_registered, register_routine
from routilux.store import JobStore, create_job, run_job


APPROVAL = Path(__file__).parents[2] / "examples" / "approval" / "flow.json"
EVIL = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>']


class Ticker(Routine):
    """Ticks to itself ``n`` times, 20 ms of work each: a job that runs until stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.start)
        self.define_event("tick", ["i"])
        self.define_slot("tick", self.tick)

    def start(self, n: int = 10_000, **_: Any) -> None:
        """Send the first tick."""
        self.emit("tick", i=n)

    def tick(self, i: int, **_: Any) -> None:
        """Work a little, then tick again until ``i`` reaches 0."""
        time.sleep(0.02)
        if i > 0:
            self.emit("tick", i=i - 1)


class Boom(Routine):
    """Raises: a job that fails with an error and its traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.start)

    def start(self, **_: Any) -> None:
        """Fail."""
        msg = "the ledger is closed <b>today</b>"
        raise RuntimeError(msg)


class Echo(Routine):
    """Records what it is given as an output and in the shared data."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.start)

    def start(self, **data: Any) -> None:
        """Echo the data."""
        self.send_output("echo", **data)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("echo", data)


for _name, _cls in (("ui_tests.Ticker", Ticker), ("ui_tests.Boom", Boom), ("ui_tests.Echo", Echo)):
    if not is_registered(_name):
        register_routine(_cls, name=_name)


def approval_job(store: JobStore, amount: int = 120, job_id: str | None = None) -> str:
    """Run the approval example until it pauses for a person; return the job id."""
    data = json.loads(APPROVAL.read_text(encoding="utf-8"))
    params = {"amount": amount, "employee": "ana", "reason": "train ticket"}
    job = create_job(store, data, "ask", params, entry_slot="input", job_id=job_id)
    state = run_job(job, store)
    assert "paused" == state.status
    return job


def _one_routine_flow(flow_id: str, routine: Routine, rid: str) -> Flow:
    flow = Flow(flow_id)
    flow.add_routine(routine, rid)
    return flow


def failed_job(store: JobStore) -> str:
    """A job whose only routine raised under the STOP strategy: failed, with one error."""
    flow = _one_routine_flow("ui-boom", Boom(), "boom")
    flow.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
    job = create_job(store, flow, "boom", {})
    assert "failed" == run_job(job, store).status
    flow.shutdown(wait=False)
    return job


def evil_job(store: JobStore) -> str:
    """A completed job whose entry data, outputs and shared data hold markup."""
    flow = _one_routine_flow("ui-evil", Echo(), EVIL[1])
    job = create_job(store, flow, EVIL[1], {"note": EVIL[0], "name": EVIL[1]})
    assert "completed" == run_job(job, store).status
    flow.shutdown(wait=False)
    return job


class RunningJob:
    """A Ticker job run by ``run_job`` in a thread of the test (its runner is alive)."""

    def __init__(self, store: JobStore) -> None:
        flow = _one_routine_flow("ui-ticker", Ticker(), "ticker")
        flow.connect("ticker", "tick", "ticker", "tick")
        self.job_id = create_job(store, flow, "ticker", {"n": 10_000})
        flow.shutdown(wait=False)
        self.store = store
        self.status: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while store.load_job(self.job_id).status != "running":
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.01)

    def _run(self) -> None:
        self.status = run_job(self.job_id, self.store, checkpoint_interval=0.1).status

    def stop(self) -> None:
        """Cancel the job if it still runs, and wait for its runner."""
        if self.thread.is_alive():
            self.store.request_control(self.job_id, "cancel")
        self.thread.join(10)


def wait_status(store: JobStore, job_id: str, expected: str, timeout: float = 10) -> str:
    """Wait until the stored job is ``expected`` (a run started elsewhere may not have claimed
    it yet), or ``timeout`` passes; return its status then."""
    deadline = time.monotonic() + timeout
    status = store.load_job(job_id).status
    while status != expected and time.monotonic() < deadline:
        store.wait_settled(job_id, 0.05)  # type: ignore[attr-defined]
        status = store.load_job(job_id).status
    return status

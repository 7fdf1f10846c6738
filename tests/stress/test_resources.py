"""
Resources: ``flow.shutdown()`` releases the worker threads and the retry timer, so the
process's thread count goes back to where it started; a shutdown that times out while a
handler still runs leaves nothing waiting forever.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from helpers import wait_until

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

from ._support import Ledger, diamond_flow


WAIT = 10.0


def _settle_threads(expected: int, timeout: float = WAIT) -> int:
    """Wait (bounded) for the thread count to drop to ``expected``; return the count."""
    deadline = time.monotonic() + timeout
    count = threading.active_count()
    while count > expected and time.monotonic() < deadline:
        for t in threading.enumerate():
            if (
                t is not threading.current_thread()
                and t.daemon
                and t.name.startswith(("ThreadPoolExecutor", "routilux-timer", "res-"))
            ):
                t.join(0.05)
        count = threading.active_count()
    return count


class _Flaky(Routine):
    """Fails the first ``fails`` activations of each job, then succeeds."""

    def __init__(self, fails: int) -> None:
        super().__init__()
        self.fails = fails
        self.define_slot("inp", self.take)

    def take(self, token: Any = None) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        n = ctx.job_state.modify_shared_data("tries", lambda v: v + 1, 0)
        if n <= self.fails:
            raise RuntimeError(f"flaky {n}")


class _Src(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", lambda: self.emit("out", token=1))
        self.define_event("out", ["token"])


class _Gate(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.define_slot("trigger", self.take)

    def take(self) -> None:
        self.entered.set()
        assert self.release.wait(WAIT), "gate never released"


class TestShutdown:
    def test_shutdown_releases_workers_and_timer(self) -> None:
        """Workers and the retry timer are joined by shutdown: thread count is restored."""
        before = threading.active_count()
        ledger = Ledger()
        flow = diamond_flow(ledger, "concurrent", 4)
        flow.add_routine(_Src(), "retry_src")
        flaky = _Flaky(fails=2)
        flaky.set_error_handler(
            ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=3, retry_delay=0.01)
        )
        flow.add_routine(flaky, "flaky")
        flow.connect("retry_src", "out", "flaky", "inp")
        jobs = [flow.submit("src", {"n": 4}) for _ in range(20)]
        retried = flow.submit("retry_src")
        for js in [*jobs, retried]:
            assert js.wait_for_completion(WAIT)
        assert retried.status == "completed"
        assert retried.shared_data["tries"] == 3
        assert flow._timer is not None, "the retry should have started the timer thread"
        assert threading.active_count() > before
        flow.shutdown(wait=True, timeout=WAIT)
        assert _settle_threads(before) <= before, [t.name for t in threading.enumerate()]

    def test_context_manager_releases_threads(self) -> None:
        """Leaving ``with Flow(...)`` shuts the pool down."""
        before = threading.active_count()
        ledger = Ledger()
        with diamond_flow(ledger, "concurrent", 4) as flow:
            jobs = [flow.submit("src", {"n": 3}) for _ in range(10)]
            for js in jobs:
                assert js.wait_for_completion(WAIT)
        assert _settle_threads(before) <= before

    def test_repeated_flows_do_not_leak_threads(self) -> None:
        """Twenty flows, each used and shut down: no thread is left behind."""
        before = threading.active_count()
        for _ in range(20):
            flow = diamond_flow(Ledger(), "concurrent", 3)
            assert flow.execute("src", {"n": 2}, timeout=WAIT).status == "completed"
            flow.shutdown(wait=True, timeout=WAIT)
        assert _settle_threads(before) <= before

    def test_shutdown_with_pending_retry_of_paused_job(self) -> None:
        """A paused job's retry is moved to pending_tasks, so shutdown drops no timer work."""
        before = threading.active_count()
        flow = Flow(execution_strategy="concurrent", max_workers=2)
        flow.add_routine(_Src(), "src")
        flaky = _Flaky(fails=1)
        flaky.set_error_handler(
            ErrorHandler(strategy=ErrorStrategy.RETRY, max_retries=2, retry_delay=30.0)
        )
        flow.add_routine(flaky, "flaky")
        flow.connect("src", "out", "flaky", "inp")
        js = flow.submit("src")
        wait_until(lambda: js.shared_data.get("tries") == 1, WAIT, "the first try of flaky")
        flow.pause(js, "before shutdown")
        assert js.status == "paused"
        assert [t["slot_routine_id"] for t in js.pending_tasks] == ["flaky"]
        flow.shutdown(wait=True, timeout=WAIT)
        assert _settle_threads(before) <= before
        flow.resume(js)
        assert js.wait_for_completion(WAIT)
        assert js.status == "completed"
        assert js.shared_data["tries"] == 2
        flow.shutdown(wait=True, timeout=WAIT)
        assert _settle_threads(before) <= before

    def test_shutdown_timeout_while_handler_runs(self) -> None:
        """
        shutdown(timeout) with a handler still running returns in time; the job then
        still finishes and a second shutdown releases every thread.
        """
        before = threading.active_count()
        flow = Flow(execution_strategy="concurrent", max_workers=2)
        gate = _Gate()
        flow.add_routine(gate, "gate")
        js: JobState = flow.submit("gate")
        assert gate.entered.wait(WAIT)
        stopper = threading.Thread(target=flow.shutdown, kwargs={"wait": True, "timeout": 0.2})
        stopper.start()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "shutdown(timeout=0.2) waits for the running handler"
        assert not gate.release.is_set()
        gate.release.set()
        assert js.wait_for_completion(WAIT)
        assert js.status == "completed"
        flow.shutdown(wait=True, timeout=WAIT)
        assert _settle_threads(before) <= before

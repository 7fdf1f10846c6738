"""
Ordering: a sequential job runs its activations in strict FIFO order of emission, across
any number of pauses and resumes (pause called from inside a handler, resume from
another thread), and a concurrent job delivers the same multiset in any order.
"""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from routilux import JobState

from ._support import Ledger, check_job, describe, diamond_flow


WAIT = 10.0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), pause_at=st.sets(st.integers(0, 20), max_size=4))
def test_sequential_fifo_across_pauses(n: int, pause_at: set[int]) -> None:
    """Delivery order == emission order for a sequential job, pauses included."""
    ledger = Ledger()
    flow = diamond_flow(ledger, "sequential", 1, spin=5)
    paused = threading.Event()
    jobs: dict[str, JobState] = {}
    count = [0]

    def on_start(job_id: str, routine: str, token: str) -> None:
        if token == "entry":
            return
        count[0] += 1
        if count[0] - 1 in pause_at:
            flow.pause(jobs[job_id], f"at {count[0] - 1}")
            paused.set()

    ledger.on_start = on_start
    js = JobState(flow.flow_id)
    jobs[js.job_id] = js
    try:
        flow.submit("src", {"n": n}, job_state=js)
        while not js.wait_for_completion(0.0):
            # Wait for either the end of the job or the next pause; resume after a pause.
            with js._settled:
                js._settled.wait_for(lambda: js.status == "paused" or js._is_finished(), WAIT)
            if js.status == "paused":
                assert paused.wait(WAIT)
                paused.clear()
                flow.resume(js)
        assert js.status == "completed", describe(js)
        assert not check_job(ledger, js)
        assert ledger.deliver_order[js.job_id] == ledger.emit_order[js.job_id]
        assert len(js.pause_points) == len([p for p in pause_at if p < 4 * n])
    finally:
        flow.shutdown(wait=True, timeout=WAIT)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 8))
def test_concurrent_same_multiset(n: int) -> None:
    """A concurrent job delivers exactly what it emitted, once each."""
    ledger = Ledger()
    flow = diamond_flow(ledger, "concurrent", 4)
    try:
        js = flow.submit("src", {"n": n})
        assert js.wait_for_completion(WAIT)
        assert js.status == "completed"
        assert not check_job(ledger, js)
        assert sorted(ledger.deliver_order[js.job_id]) == sorted(ledger.emit_order[js.job_id])
    finally:
        flow.shutdown(wait=True, timeout=WAIT)

"""
What a crash can re-run: a job checkpointed every few activations, "crashed" right after
any checkpoint (its snapshot loaded into a new JobState and resumed on a new flow), runs
exactly the activations that had not finished at that checkpoint: nothing done before it
runs again, nothing is lost. A crash between checkpoints re-runs the activations since the
last one (at least once), never older ones.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routilux import JobState

from ._support import Ledger, check_job, describe, diamond_flow


WAIT = 10.0


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 5),
    every=st.integers(1, 4),
    strategy=st.sampled_from(["sequential", "concurrent"]),
    pick=st.integers(0, 1_000),
)
def test_resume_from_any_checkpoint_reruns_exactly_the_unfinished(
    n: int, every: int, strategy: str, pick: int
) -> None:
    """Deliveries before the checkpoint + deliveries after reload == one full run."""
    ledger = Ledger()
    flow = diamond_flow(ledger, strategy, 2, spin=5, flow_id="crash")
    points: list[tuple[dict[str, Any], Counter[tuple[str, str]]]] = []
    lock = threading.Lock()

    def checkpoint(js: JobState, snapshot: dict[str, Any]) -> None:
        # The snapshot was taken with nothing of the job running. A sequential job also
        # runs nothing while this callback runs, so the ledger matches it key by key; a
        # concurrent job may go on meanwhile, so it is compared by routine counts.
        _, delivered = ledger.snapshot(js.job_id)
        with lock:
            points.append((snapshot, delivered))

    js = flow.execute("src", {"n": n}, checkpoint=checkpoint, checkpoint_every=every)
    assert js.wait_for_completion(WAIT)
    assert js.status == "completed"
    assert not check_job(ledger, js)
    flow.shutdown(wait=True, timeout=WAIT)
    _, full = ledger.snapshot(js.job_id)
    assert points, "no checkpoint was taken"

    snapshot, before = points[pick % len(points)]
    ledger2 = Ledger()
    flow2 = diamond_flow(ledger2, strategy, 2, spin=5, flow_id="crash")
    # The second ledger must know what the first run emitted before the checkpoint.
    emitted, _ = ledger.snapshot(js.job_id)
    ledger2.emitted[js.job_id].update(emitted)
    restored = JobState()
    restored.deserialize(snapshot)
    try:
        if restored.status in ("completed", "failed", "cancelled") and not restored.pending_tasks:
            after: Counter[tuple[str, str]] = Counter()
        else:
            flow2.resume(restored)
            assert restored.wait_for_completion(WAIT), describe(restored)
            assert restored.status == "completed", describe(restored)
            _, after = ledger2.snapshot(js.job_id)
        counted = Counter(
            {
                rid: state.get("activation_count", 0)
                for rid, state in snapshot["routine_states"].items()
            }
        )
        per_routine_after = Counter()
        for (rid, _token), count in after.items():
            per_routine_after[rid] += count
        per_routine_full = Counter()
        for (rid, _token), count in full.items():
            per_routine_full[rid] += count
        assert counted + per_routine_after == per_routine_full, (counted, after, full)
        if strategy == "sequential":
            assert not (set(before) & set(after)), "work done before the checkpoint ran again"
            assert before + after == full, (before, after, full)
    finally:
        flow2.shutdown(wait=True, timeout=WAIT)


def test_checkpoint_snapshots_are_consistent() -> None:
    """Every checkpoint's pending tasks are exactly the emitted-but-undelivered work."""
    ledger = Ledger()
    flow = diamond_flow(ledger, "sequential", 1, spin=5, flow_id="crash")
    problems: list[str] = []

    def checkpoint(js: JobState, snapshot: dict[str, Any]) -> None:
        copy = JobState()
        copy.deserialize(snapshot)
        problems.extend(check_job(ledger, copy, reloaded=True))

    js = flow.execute("src", {"n": 4}, checkpoint=checkpoint, checkpoint_every=1)
    assert js.wait_for_completion(WAIT)
    flow.shutdown(wait=True, timeout=WAIT)
    assert js.status == "completed"
    assert not problems, problems[:5]

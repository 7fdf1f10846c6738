"""
Whole jobs on a Dask LocalCluster (two worker processes on 127.0.0.1): a killed worker, a
cancel through the job's Event, and pause then resubmit.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from scaleout_routines import chain_flow, read_log


pytest.importorskip("routilux_dask", reason="routilux-dask is not installed")

import distributed

from routilux.exceptions import InvalidStateError
from routilux.store import JobExecutor, JobHandle, SqliteJobStore
from routilux_dask import DaskJobExecutor


WAIT = 10.0
"""The longest any wait here lasts: jobs of a second or two, a killed worker back in a few."""


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A LocalCluster of two single-threaded worker processes, and its client."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def oracle(steps: int) -> Any:
    flow = chain_flow()
    try:
        return flow.execute("step", {"n": 0, "steps": steps})
    finally:
        flow.shutdown()


def test_killed_worker_job_resumes_from_checkpoint(client: Any, tmp_path: Path) -> None:
    """SIGKILL the worker running a job: Dask reruns it elsewhere, from its last checkpoint."""
    log = tmp_path / "effects.log"
    store = SqliteJobStore(tmp_path / "jobs.db")
    executor = DaskJobExecutor(client, store, imports=["scaleout_routines"])
    h = chain_flow(delay=0.15, log=str(log)).submit("step", {"n": 0, "steps": 8}, backend=executor)
    assert isinstance(executor, JobExecutor)
    assert isinstance(h, JobHandle)
    wait_until(lambda: len(read_log(str(log))) >= 3, WAIT, "three activations")
    victim = read_log(str(log))[-1][1]
    os.kill(victim, signal.SIGKILL)
    final = h.result(timeout=WAIT)
    assert "completed" == final.status
    assert oracle(8).shared_data == final.shared_data
    counts = Counter(k for k, _ in read_log(str(log)))
    assert 9 == len(counts)
    assert sum(counts.values()) - 9 <= 1  # only the activation in flight ran twice
    assert victim not in {pid for _, pid in read_log(str(log))[-3:]}
    assert "completed" == h.status()
    store.close()


def test_cancel_through_event(client: Any, tmp_path: Path) -> None:
    """Cancel reaches a running job (no store) through its Event."""
    log = tmp_path / "effects.log"
    executor = DaskJobExecutor(client, imports=["scaleout_routines"])
    h = chain_flow(delay=0.05, log=str(log)).submit(
        "step", {"n": 0, "steps": 500}, backend=executor
    )
    wait_until(lambda: len(read_log(str(log))) >= 2, WAIT, "the job running")
    h.cancel()
    final = h.result(timeout=10)
    assert "cancelled" == final.status
    assert len(read_log(str(log))) < 500


def test_pause_then_resubmit(client: Any, tmp_path: Path) -> None:
    """A paused job comes back as its paused state; resubmitted, it completes like one run."""
    log = tmp_path / "effects.log"
    executor = DaskJobExecutor(client, imports=["scaleout_routines"])
    flow = chain_flow(delay=0.03, log=str(log))
    h = flow.submit("step", {"n": 0, "steps": 40}, backend=executor)
    wait_until(lambda: len(read_log(str(log))) >= 2, WAIT, "the job running")
    h.pause()
    paused = h.result(timeout=10)
    assert "paused" == paused.status
    assert paused.pending_tasks
    h.resume()
    final = h.result(timeout=WAIT)
    assert "completed" == final.status
    assert oracle(40).shared_data == final.shared_data
    keys = [k for k, _ in read_log(str(log))]
    assert len(keys) == len(set(keys)) == 41


def test_shutdown_after_future_cancel(client: Any, tmp_path: Path) -> None:
    """shutdown() waits for the other jobs and tolerates a run cancelled by future.cancel()."""
    log = tmp_path / "effects.log"
    executor = DaskJobExecutor(client, imports=["scaleout_routines"])
    quick = chain_flow().submit("step", {"n": 0, "steps": 2}, backend=executor)
    dropped = chain_flow(delay=0.02, log=str(log)).submit(
        "step", {"n": 0, "steps": 20}, backend=executor
    )
    dropped.future.cancel()
    assert dropped.future.cancelled()
    executor.shutdown()  # raised FuturesCancelledError
    assert quick.done()
    assert "completed" == quick.result(timeout=10).status


def test_completed_job_whose_result_is_lost_returns_its_stored_state(
    client: Any, tmp_path: Path
) -> None:
    """The worker holding a completed job's result dies: result() is still the stored state.

    Dask recomputes the lost result; the recomputed task finds the job completed in the
    store and returns that state instead of running (or refusing) it.
    """
    log = tmp_path / "effects.log"
    store = SqliteJobStore(tmp_path / "jobs.db")
    executor = DaskJobExecutor(client, store, imports=["scaleout_routines"])
    h = chain_flow(log=str(log)).submit("step", {"n": 0, "steps": 3}, backend=executor)
    wait_until(h.done, WAIT, "the job's task to finish")
    key = h.future.key
    holder = client.who_has(h.future)[key][0]
    victim = client.run(os.getpid, workers=[holder])[holder]
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: h.future.status == "error" or holder not in client.who_has(h.future).get(key, ()),
        WAIT,
        "Dask to notice the lost result and compute it again",
    )
    final = h.result(timeout=WAIT)
    assert "completed" == final.status
    assert oracle(3).shared_data == final.shared_data
    assert 4 == len(read_log(str(log)))  # no activation ran twice
    assert "completed" == h.status()
    store.close()


def test_cancel_of_a_queued_job_drops_its_task(client: Any, tmp_path: Path) -> None:
    """Cancelling a job still queued on the cluster drops its task; it never runs.

    result() returns the job's cancelled state as stored.
    """
    log = tmp_path / "effects.log"
    store = SqliteJobStore(tmp_path / "jobs.db")
    executor = DaskJobExecutor(client, store, imports=["scaleout_routines"])
    busy = chain_flow(delay=0.05, log=str(log), flow_id="busy")
    blockers = [busy.submit("step", {"n": 0, "steps": 400}, backend=executor) for _ in range(2)]

    def both_running() -> bool:
        return 2 == len({key.split(":")[0] for key, _ in read_log(str(log))})

    wait_until(both_running, WAIT, "both workers busy with a blocker")
    queued = chain_flow(log=str(log)).submit("step", {"n": 0, "steps": 2}, backend=executor)
    assert "pending" == queued.status()
    queued.cancel()
    for blocker in blockers:
        blocker.cancel()
    final = queued.result(timeout=WAIT)
    assert "cancelled" == final.status
    assert queued.future.cancelled()
    assert "cancelled" == queued.status()
    for blocker in blockers:
        assert "cancelled" == blocker.result(timeout=WAIT).status
    assert [] == [key for key, _ in read_log(str(log)) if key.startswith(queued.job_id + ":")]
    store.close()


def test_cancel_of_a_queued_job_without_store_never_runs_it(client: Any, tmp_path: Path) -> None:
    """Without a store, a job cancelled while queued runs no activation; its result is cancelled."""
    log = tmp_path / "effects.log"
    executor = DaskJobExecutor(client, imports=["scaleout_routines"])
    busy = chain_flow(delay=0.05, log=str(log), flow_id="busy")
    blockers = [busy.submit("step", {"n": 0, "steps": 400}, backend=executor) for _ in range(2)]

    def both_running() -> bool:
        return 2 == len({key.split(":")[0] for key, _ in read_log(str(log))})

    wait_until(both_running, WAIT, "both workers busy with a blocker")
    queued = chain_flow(log=str(log)).submit("step", {"n": 0, "steps": 2}, backend=executor)
    queued.cancel()
    for blocker in blockers:
        blocker.cancel()
    assert "cancelled" == queued.result(timeout=WAIT).status
    assert "cancelled" == queued.status()
    assert [] == [key for key, _ in read_log(str(log)) if key.startswith(queued.job_id + ":")]
    for blocker in blockers:
        assert "cancelled" == blocker.result(timeout=WAIT).status


def test_cancel_of_a_paused_job_returns_the_cancelled_state(client: Any, tmp_path: Path) -> None:
    """A paused job cancelled afterwards: result() is its cancelled state, as stored."""
    store = SqliteJobStore(tmp_path / "jobs.db")
    executor = DaskJobExecutor(client, store, imports=["scaleout_routines"])
    h = chain_flow(delay=0.03).submit("step", {"n": 0, "steps": 200}, backend=executor)
    wait_until(lambda: "running" == h.status(), WAIT, "the job running")
    h.pause()
    assert "paused" == h.result(timeout=WAIT).status
    h.cancel()
    assert "cancelled" == h.result(timeout=5).status
    assert "cancelled" == h.status()
    store.close()


def test_cancel_of_a_paused_job_without_store(client: Any) -> None:
    """Without a store, a paused job cancelled afterwards: result() is its cancelled state."""
    executor = DaskJobExecutor(client, imports=["scaleout_routines"])
    h = chain_flow(delay=0.03).submit("step", {"n": 0, "steps": 200}, backend=executor)
    h.pause()
    paused = h.result(timeout=WAIT)
    assert "paused" == paused.status
    h.cancel()
    final = h.result(timeout=5)
    assert ("cancelled", paused.shared_data) == (final.status, final.shared_data)
    assert "cancelled" == h.status()
    with pytest.raises(InvalidStateError):
        h.resume()

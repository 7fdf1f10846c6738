"""
Benchmark of the checkpoint log (issue "Checkpoints that cost what changed").

Run with ``python benchmarks/bench_checkpoints.py [--quick]``. Three measurements, each
against a floor from the same run:

1. A chain job of 10,000 activations checkpointed after every activation into a SQLite
   store that keeps every checkpoint: the bytes its log holds against the size of the
   final job document (bar: at most 3x), and the time of one checkpoint around the 100th
   against around the 10,000th (bar: flat, at most 1.5x). Loading the final job, and
   forking it at checkpoint 5,000 (bar: under 50 ms; the median of 9 forks, beside 9 loads
   of that checkpoint, the floor: a fork copies its rows and adds one).
2. A person in the loop, 500 times: a job asks (HumanInput), pauses and is checkpointed,
   is loaded again and resumed with the answer, and finishes. Median and 99th percentile
   of one round trip (bars: median <= 1.5 ms, p99 <= 3x the median), in the default
   durability and with ``durable=True`` (every commit synced). The floor: one plain SQLite
   ``INSERT`` + ``COMMIT`` of the same size in the same mode.

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from routilux import Flow, JobState, Routine
from routilux.registry import register_routine
from routilux.store import SqliteJobStore, create_job, run_job
from routilux_stdlib import HumanInput


@register_routine(name="bench.checkpoints.Step")
class Step(Routine):
    """Adds to shared data and the shared log, then emits ``n + 1`` to itself until ``steps``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.step)
        self.define_event("next", ["n", "steps"])

    def step(self, n: int = 0, steps: int = 10, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data("n", n)
        js.append_to_shared_log({"n": n})
        if n < steps:
            self.emit("next", n=n + 1, steps=steps)


@register_routine(name="bench.checkpoints.Done")
class Done(Routine):
    """Records the answer it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, answer: Any = None, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("answer", answer)


def chain_flow() -> Flow:
    flow = Flow("bench-chain", execution_strategy="sequential")
    flow.add_routine(Step(), "step")
    flow.connect("step", "next", "step", "trigger")
    return flow


def ask_flow() -> Flow:
    flow = Flow("bench-ask", execution_strategy="sequential")
    flow.add_routine(HumanInput(), "ask")
    flow.add_routine(Done(), "done")
    flow.connect("ask", "output", "done", "input")
    return flow


class TimedStore(SqliteJobStore):
    """A SQLite store that times each checkpoint it writes."""

    times: list[float]

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().save_checkpoint(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - start)


def bench_long_job(folder: Path, steps: int) -> dict[str, Any]:
    store = TimedStore(folder / "long.db", keep_checkpoints=None)
    store.times = []
    job_id = create_job(store, chain_flow(), "step", {"steps": steps - 1})
    start = time.perf_counter()
    state = run_job(job_id, store, checkpoint_every=1)
    wall = time.perf_counter() - start
    assert state.status == "completed", state.status
    t0 = time.perf_counter()
    record = store.load_job(job_id)
    load = time.perf_counter() - t0
    assert record.state is not None
    final = len(json.dumps(record.state, separators=(",", ":")).encode())
    with sqlite3.connect(store.path) as conn:
        written, rows, raw = conn.execute(
            "SELECT sum(length(body)), count(*), sum(raw_size) FROM routilux_checkpoints "
            "WHERE job_id = ?",
            (job_id,),
        ).fetchone()
    conn.close()
    forks, loads = [], []
    for _ in range(9):  # side by side: a fork, and a load of the checkpoint it copies
        t0 = time.perf_counter()
        fork = store.fork(job_id, at=rows // 2)
        forks.append(time.perf_counter() - t0)
        assert fork.status == "paused"
        t0 = time.perf_counter()
        store.load_checkpoint(job_id, rows // 2)
        loads.append(time.perf_counter() - t0)
    fork_time, load_at = statistics.median(forks), statistics.median(loads)
    times = store.times
    window = max(10, len(times) // 100)
    early = statistics.median(times[100 : 100 + window])
    late = statistics.median(times[-window - 1 : -1])
    store.close()
    return {
        "activations": steps,
        "checkpoints": rows,
        "final_document_bytes": final,
        "log_bytes": written,
        "log_over_final": written / final,
        "log_json_bytes": raw,
        "checkpoint_early_ms": early * 1e3,
        "checkpoint_late_ms": late * 1e3,
        "late_over_early": late / early,
        "run_s": wall,
        "load_ms": load * 1e3,
        "fork_ms": fork_time * 1e3,
        "load_at_fork_ms": load_at * 1e3,
        "fork_over_load": fork_time / load_at,
    }


def _floor(path: Path, durable: bool, size: int, trips: int) -> float:
    # One plain INSERT + COMMIT of ``size`` bytes in the same journal and sync mode.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    blob = b"x" * size
    times = []
    for _ in range(trips):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", (blob,))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - t0)
    conn.close()
    return statistics.median(times)


def bench_round_trips(folder: Path, trips: int, durable: bool) -> dict[str, Any]:
    name = "durable" if durable else "default"
    store = SqliteJobStore(folder / f"hitl-{name}.db", durable=durable)
    flow = ask_flow()

    def answer(_flow: Flow, js: JobState) -> None:
        HumanInput.provide_answer(js, "ask", answer="yes")

    times = []
    for i in range(trips + 20):
        job_id = create_job(store, flow, "ask", {"data": {"i": i}})
        t0 = time.perf_counter()
        paused = run_job(job_id, store)
        done = run_job(job_id, store, prepare=answer)
        elapsed = time.perf_counter() - t0
        assert (paused.status, done.status) == ("paused", "completed"), (paused, done)
        assert done.shared_data["answer"] == "yes"
        if i >= 20:  # warm-up
            times.append(elapsed)
    store.close()
    times.sort()
    median = statistics.median(times)
    p99 = times[int(len(times) * 0.99) - 1]
    floor = _floor(folder / f"floor-{name}.db", durable, 2000, 200)
    return {
        "durability": name,
        "trips": trips,
        "median_ms": median * 1e3,
        "p99_ms": p99 * 1e3,
        "p99_over_median": p99 / median,
        "max_ms": times[-1] * 1e3,
        "floor_commit_ms": floor * 1e3,
        "median_over_floor": median / floor,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="1,000 activations, 100 trips")
    args = parser.parse_args()
    steps, trips = (1_000, 100) if args.quick else (10_000, 500)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {
            "long_job": bench_long_job(folder, steps),
            "round_trips": [
                bench_round_trips(folder, trips, durable=False),
                bench_round_trips(folder, trips, durable=True),
            ],
        }
    print(json.dumps(results, indent=2))
    long_job = results["long_job"]
    print(
        f"\nlog {long_job['log_over_final']:.2f}x the final document (bar 3x); checkpoint "
        f"{long_job['late_over_early']:.2f}x as long at the end as at the 100th (flat); "
        f"fork {long_job['fork_ms']:.1f} ms (bar 50 ms; {long_job['fork_over_load']:.2f}x a "
        "load of the checkpoint it copies)"
    )
    for r in results["round_trips"]:
        print(
            f"round trip ({r['durability']}): median {r['median_ms']:.2f} ms, p99 "
            f"{r['p99_ms']:.2f} ms ({r['p99_over_median']:.2f}x the median; bars 1.5 ms, 3x); "
            f"{r['median_over_floor']:.1f}x one plain commit ({r['floor_commit_ms']:.3f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
Bounded memory (issue "Proof under stress", part 6) and a lean JobState (issue "Checkpoints
that cost what changed", part 4).

Scenarios:
  retained   10,000 finished JobStates of a 3-routine flow (history kept) kept in a list:
             bytes each (tracemalloc), against the 1,500 B budget, with the top
             allocation sites.
  contended  10 threads x 100,000 record_execution + update_shared_data on one JobState,
             against a floor measured in the same run (the same appends and dict writes
             under one plain threading.Lock): at least half its ops/s, as the median of
             7 side-by-side pairs. Not 10 x 10,000: a floor thread does its 20,000 ops in
             about 4 ms, within one GIL switch interval (5 ms), so the floor's threads run
             one after the other and never contend, while the JobState's (12 ms) do; with
             100,000 ops both sides contend (with 10,000 ops and a 0.5 ms switch interval
             the share is the same, 0.8-0.9, where 5 ms gives anything from 0.1 to 0.8).
  single     one thread: update_shared_data and append_to_shared_log, each against its
             floor in the same run (the same dict write / stamped append under a plain
             lock); their budgets (0.6 us and 1.2 us) hold on a quiet machine.
  history    one job with 1,000,000 activations (a routine that re-emits to itself) under
             Flow(history_limit=1000): traced memory at 100,000 and at 1,000,000
             activations, the peak, and job_state.history_dropped. The ceiling must not
             grow with the number of activations.

Thread release by flow.shutdown() is a test (tests/stress/test_resources.py).

Run: .venv/bin/python benchmarks/bench_memory.py [--activations N] [--jobs N] [--ops N]
(prints a report, writes benchmarks/results/memory.json; exit status 1 if a budget fails)
"""

from __future__ import annotations

import argparse
import gc
import json
import linecache
import os
import statistics
import sys
import threading
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

from routilux import Flow, JobState, Routine


BUDGET_PER_JOB = 1_500
THREADS = 10
#: The least share of the floor's ops/s the contended JobState keeps.
CONTENDED_SHARE = 0.5
#: Side-by-side runs of the floor and the job in the contended scenario (median taken).
PAIRS = 7
#: Microseconds per call of update_shared_data and append_to_shared_log (quiet machine).
SINGLE_BUDGET_US = {"update_shared_data": 0.6, "append_to_shared_log": 1.2}
HISTORY_LIMIT = 1_000
#: The ceiling of the long job's traced memory (the flow, one queued activation, 1,000
#: history records and 1,000 tracker records, with room to spare).
HISTORY_CEILING = 8 * 1024 * 1024


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["x"])

    def go(self, x: int = 0) -> None:
        self.emit("out", x=x)


class Relay(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", self.take)
        self.define_event("out", ["x"])

    def take(self, x: int) -> None:
        self.emit("out", x=x)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", self.take)

    def take(self, x: int) -> None:
        pass


class Loop(Routine):
    """Re-emits to itself until ``limit``; records memory at checkpoints."""

    def __init__(self, limit: int, marks: dict[int, int]) -> None:
        super().__init__()
        self.limit = limit
        self.marks = marks
        self.define_slot("trigger", self.step)
        self.define_slot("inp", self.step)
        self.define_event("next", ["i"])

    def step(self, i: int = 0) -> None:
        if i in self.marks:
            self.marks[i] = tracemalloc.get_traced_memory()[0]
        if i < self.limit:
            self.emit("next", i=i + 1)


def retained(jobs: int) -> dict[str, Any]:
    flow = Flow("memory", "sequential")
    flow.add_routine(Source(), "src")
    flow.add_routine(Relay(), "relay")
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "out", "relay", "inp")
    flow.connect("relay", "out", "sink", "inp")
    for _ in range(200):
        flow.execute("src", {"x": 1})
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    kept: list[JobState] = [flow.execute("src", {"x": 1}) for _ in range(jobs)]
    flow._last_run = None  # flow.execution_tracker would keep one run alive
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    sites = []
    for stat in after.compare_to(before, "lineno")[:12]:
        frame = stat.traceback[0]
        source = linecache.getline(frame.filename, frame.lineno).strip()
        sites.append(
            {
                "bytes_per_job": round(stat.size_diff / jobs),
                "site": f"{Path(frame.filename).name}:{frame.lineno}",
                "source": source[:90],
            }
        )
    assert all(js.status == "completed" for js in kept)
    flow.shutdown()
    per_job = used / jobs
    return {
        "jobs": jobs,
        "bytes_per_job": round(per_job),
        "budget": BUDGET_PER_JOB,
        "ok": per_job <= BUDGET_PER_JOB,
        "top_sites": sites,
    }


def _contended_floor(ops: int) -> float:
    # The same work as contended_job under one plain lock: a booking tuple appended and a
    # dict key written per op. Returns seconds.
    lock = threading.Lock()
    items: list[Any] = []
    shared: dict[str, Any] = {}
    data = {"i": 1}

    def work(n: int) -> None:
        key = f"k{n}"
        for i in range(ops):
            with lock:
                items.append(("r", "ev", data, time.time()))
            with lock:
                shared[key] = i

    return _threads(work)


def _contended_job(ops: int) -> float:
    js = JobState("bench")
    data = {"i": 1}

    def work(n: int) -> None:
        key = f"k{n}"
        record, update = js.record_execution, js.update_shared_data
        for i in range(ops):
            record("r", "ev", data)
            update(key, i)

    seconds = _threads(work)
    assert len(js.execution_history) == THREADS * ops, "a record was lost"
    assert js.shared_data == {f"k{n}": ops - 1 for n in range(THREADS)}, "a write was lost"
    return seconds


def _threads(work: Any) -> float:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def contended(ops: int) -> dict[str, Any]:
    # The share is the median of PAIRS runs of the floor and the job side by side, with
    # its range (see the module docstring for the number of ops).
    total = 2 * THREADS * ops
    pairs = [(_contended_floor(ops), _contended_job(ops)) for _ in range(PAIRS)]
    shares = sorted(floor / job for floor, job in pairs)
    share = statistics.median(shares)
    floor = statistics.median(f for f, _ in pairs)
    job = statistics.median(j for _, j in pairs)
    return {
        "threads": THREADS,
        "ops": total,
        "pairs": PAIRS,
        "floor_ops_per_s": round(total / floor),
        "job_ops_per_s": round(total / job),
        "share_of_floor": round(share, 2),
        "share_range": [round(shares[0], 2), round(shares[-1], 2)],
        "required": CONTENDED_SHARE,
        "ok": share >= CONTENDED_SHARE,
    }


def _per_call_us(fn: Any, n: int) -> float:
    # The best of 5 runs of n calls, in microseconds per call.
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def single(n: int) -> dict[str, Any]:
    lock = threading.Lock()
    shared: dict[str, Any] = {}
    log: list[dict[str, Any]] = []
    entry = {"msg": "m"}

    def floor_update(i: int) -> None:
        with lock:
            shared["k"] = i

    def floor_append(i: int) -> None:
        stamped = {**entry, "timestamp": datetime.now().isoformat()}
        with lock:
            log.append(stamped)

    results: dict[str, Any] = {}
    for name, floor_fn in (
        ("update_shared_data", floor_update),
        ("append_to_shared_log", floor_append),
    ):
        js = JobState("bench")
        if name == "update_shared_data":
            op = js.update_shared_data

            def job_fn(i: int, op: Any = op) -> None:
                op("k", i)
        else:
            op = js.append_to_shared_log

            def job_fn(i: int, op: Any = op) -> None:
                op(entry)

        floor_us = _per_call_us(floor_fn, n)
        job_us = _per_call_us(job_fn, n)
        log.clear()
        results[name] = {
            "floor_us": round(floor_us, 3),
            "job_us": round(job_us, 3),
            "ratio_to_floor": round(job_us / floor_us, 2),
            "budget_us": SINGLE_BUDGET_US[name],
            "within_budget": job_us <= SINGLE_BUDGET_US[name],
        }
    return results


def history(activations: int) -> dict[str, Any]:
    first = min(100_000, activations // 10)
    marks = {first: 0, activations: 0}
    flow = Flow("history", "sequential", history_limit=HISTORY_LIMIT)
    flow.add_routine(Loop(activations, marks), "loop")
    flow.connect("loop", "next", "loop", "inp")
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    js = flow.execute("loop", {"i": 0})
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    flow.shutdown()
    early = marks[first] - base
    late = marks[activations] - base
    records = 1 + activations + 1  # start, one per emit, completed
    return {
        "activations": activations + 1,
        "seconds": round(seconds, 1),
        "status": js.status,
        "history_len": len(js.execution_history),
        "history_dropped": js.history_dropped,
        "expected_dropped": records - HISTORY_LIMIT,
        f"traced_at_{first}": early,
        f"traced_at_{activations}": late,
        "peak": peak,
        "ceiling": HISTORY_CEILING,
        "ok": (
            js.status == "completed"
            and js.history_dropped == records - HISTORY_LIMIT
            and peak <= HISTORY_CEILING
            and late <= early * 1.5 + 256 * 1024
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--activations", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=100_000, help="ops per thread (contended)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = {
        "load_average_1min": round(load, 2),
        "retained": retained(args.jobs),
        "contended": contended(args.ops),
        "single": single(100_000),
        "history": history(args.activations),
    }
    print(f"load average (1 min) at start: {load:.2f} on {os.cpu_count()} cores")
    ret = results["retained"]
    print(
        f"retained: {ret['jobs']} finished JobStates, {ret['bytes_per_job']} B each "
        f"(budget {ret['budget']} B): {'ok' if ret['ok'] else 'OVER BUDGET'}"
    )
    for site in ret["top_sites"]:
        print(f"  {site['bytes_per_job']:6d} B/job  {site['site']:28s} {site['source']}")
    con = results["contended"]
    print(
        f"contended: {con['threads']} threads, {con['ops']} ops: JobState "
        f"{con['job_ops_per_s']:,} ops/s, floor (plain lock) {con['floor_ops_per_s']:,} ops/s: "
        f"{con['share_of_floor']:.2f} of the floor, median of {con['pairs']} pairs "
        f"(range {con['share_range'][0]:.2f}-{con['share_range'][1]:.2f}; at least "
        f"{con['required']}): "
        f"{'ok' if con['ok'] else 'TOO SLOW'}"
    )
    for name, one in results["single"].items():
        print(
            f"single: {name} {one['job_us']:.3f} us, floor {one['floor_us']:.3f} us "
            f"({one['ratio_to_floor']:.2f}x the floor; {one['budget_us']} us budget on a "
            f"quiet machine: {'within' if one['within_budget'] else 'over'})"
        )
    hist = results["history"]
    print(
        f"history: {hist['activations']} activations in {hist['seconds']} s, "
        f"history {hist['history_len']} kept, {hist['history_dropped']} dropped "
        f"(expected {hist['expected_dropped']}), peak {hist['peak'] / 1e6:.1f} MB "
        f"(ceiling {hist['ceiling'] / 1e6:.1f} MB): {'ok' if hist['ok'] else 'FAILED'}"
    )
    for key, value in hist.items():
        if key.startswith("traced_at_"):
            print(f"  {key}: {value / 1e6:.2f} MB")
    out = Path(__file__).parent / "results" / "memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if ret["ok"] and con["ok"] and hist["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

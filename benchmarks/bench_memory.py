"""
Bounded memory (issue "Proof under stress", part 6).

Scenarios:
  retained   10,000 finished JobStates of a 2-routine flow kept in a list: bytes each
             (tracemalloc), against the 3 KB budget, with the top allocation sites.
  history    one job with 1,000,000 activations (a routine that re-emits to itself) under
             Flow(history_limit=1000): traced memory at 100,000 and at 1,000,000
             activations, the peak, and job_state.history_dropped. The ceiling must not
             grow with the number of activations.

Thread release by flow.shutdown() is a test (tests/stress/test_resources.py).

Run: .venv/bin/python benchmarks/bench_memory.py [--activations N] [--jobs N]
(prints a report, writes benchmarks/results/memory.json; exit status 1 if a budget fails)
"""

from __future__ import annotations

import argparse
import gc
import json
import linecache
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from routilux import Flow, JobState, Routine


BUDGET_PER_JOB = 3 * 1024
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
    flow.add_routine(Sink(), "sink")
    flow.connect("src", "out", "sink", "inp")
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
    args = parser.parse_args()
    results = {"retained": retained(args.jobs), "history": history(args.activations)}
    ret = results["retained"]
    print(
        f"retained: {ret['jobs']} finished JobStates, {ret['bytes_per_job']} B each "
        f"(budget {ret['budget']} B): {'ok' if ret['ok'] else 'OVER BUDGET'}"
    )
    for site in ret["top_sites"]:
        print(f"  {site['bytes_per_job']:6d} B/job  {site['site']:28s} {site['source']}")
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
    return 0 if ret["ok"] and hist["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""
Engine throughput against floors measured in the same run.

Scenarios (issue "routilux-core: the engine"):
  chain       10-routine chain, 2,000 messages from one execute (hops/s), sequential and
              concurrent with 4 workers; floors: a plain function call per hop, and one
              ThreadPoolExecutor hand-off per hop.
  jobs        2,000 executes of a 3-routine flow from one thread, and 8 threads x 250.
  io          64 items to a handler that sleeps 20 ms, concurrent with 16 workers:
              efficiency = ideal time / wall time.

Run: .venv/bin/python benchmarks/bench_engine.py
(prints a table, writes benchmarks/results/engine.json)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from routilux import Flow, Routine


MESSAGES = 2000
CHAIN = 10


class Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.fire)
        self.define_event("out", ["value"])

    def fire(self, count: int = 1, **_: Any) -> None:
        for i in range(count):
            self.emit("out", value=i)


class Hop(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        self.emit("out", value=value)


class Sleeper(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    def take(self, value: Any = None, **_: Any) -> None:
        time.sleep(0.02)


def chain_flow(strategy: str, workers: int, length: int) -> Flow:
    flow = Flow(execution_strategy=strategy, max_workers=workers)
    flow.add_routine(Source(), "s")
    prev = "s"
    for i in range(length - 1):
        flow.add_routine(Hop(), f"h{i}")
        flow.connect(prev, "out", f"h{i}", "input")
        prev = f"h{i}"
    return flow


def floor_calls(hops: int) -> float:
    def hop(v: int) -> int:
        return v

    t = time.perf_counter()
    for _ in range(hops):
        hop(1)
    return hops / (time.perf_counter() - t)


def floor_handoff(hops: int) -> float:
    with ThreadPoolExecutor(max_workers=4) as pool:

        def hop(v: int) -> int:
            return v

        t = time.perf_counter()
        for _ in range(hops):
            pool.submit(hop, 1).result()
        return hops / (time.perf_counter() - t)


def bench_chain(strategy: str, workers: int) -> float:
    flow = chain_flow(strategy, workers, CHAIN)
    flow.execute("s", {"count": 10})
    t = time.perf_counter()
    js = flow.execute("s", {"count": MESSAGES})
    elapsed = time.perf_counter() - t
    assert js.status == "completed", js.status
    flow.shutdown()
    return MESSAGES * (CHAIN - 1) / elapsed


def bench_jobs(threads: int, per_thread: int) -> tuple[float, int]:
    flow = chain_flow("sequential", 1, 3)
    failed = 0
    lock = threading.Lock()

    def run() -> None:
        nonlocal failed
        for _ in range(per_thread):
            if flow.execute("s").status != "completed":
                with lock:
                    failed += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    t = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t
    flow.shutdown()
    return threads * per_thread / elapsed, failed


def bench_io() -> float:
    flow = Flow(execution_strategy="concurrent", max_workers=16)
    flow.add_routine(Source(), "s")
    flow.add_routine(Sleeper(), "z")
    flow.connect("s", "out", "z", "input")
    t = time.perf_counter()
    js = flow.execute("s", {"count": 64})
    wall = time.perf_counter() - t
    assert js.status == "completed"
    flow.shutdown()
    ideal = 64 * 0.02 / 16
    return ideal / wall


def main() -> int:
    hops = MESSAGES * (CHAIN - 1)
    calls = floor_calls(hops)
    handoff = floor_handoff(hops)
    seq = max(bench_chain("sequential", 1) for _ in range(3))
    conc = max(bench_chain("concurrent", 4) for _ in range(3))
    jobs1, failed1 = bench_jobs(1, 2000)
    jobs8, failed8 = bench_jobs(8, 250)
    eff = bench_io()
    rows = [
        ("floor: function call per hop", calls, "hops/s", 1.0),
        ("floor: ThreadPoolExecutor hand-off per hop", handoff, "hops/s", 1.0),
        ("chain sequential", seq, "hops/s", seq / handoff),
        ("chain concurrent (4 workers)", conc, "hops/s", conc / handoff),
        ("3-routine jobs, 1 thread x 2000", jobs1, "jobs/s", None),
        ("3-routine jobs, 8 threads x 250", jobs8, "jobs/s", None),
        ("64 x 20 ms sleeps, 16 workers", eff, "efficiency", None),
    ]
    print(f"{'scenario':48} {'value':>14}  unit        x hand-off floor")
    for name, value, unit, ratio in rows:
        r = f"{ratio:8.2f}" if ratio is not None else ""
        print(f"{name:48} {value:14,.2f}  {unit:10} {r}")
    print(f"failed jobs: {failed1 + failed8}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "engine.json").write_text(
        json.dumps(
            {
                "python": sys.version,
                "floor_calls_hops_s": calls,
                "floor_handoff_hops_s": handoff,
                "chain_sequential_hops_s": seq,
                "chain_concurrent_hops_s": conc,
                "jobs_1x2000_per_s": jobs1,
                "jobs_8x250_per_s": jobs8,
                "failed_jobs": failed1 + failed8,
                "io_efficiency": eff,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

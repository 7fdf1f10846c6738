"""
Async handlers against the floor of one await, measured in the same run.

Scenario (issue "Async handlers and await flow.aexecute()"): one sync entry handler fans
out to 200 ``async def`` activations that each ``await asyncio.sleep(0.1)``, in a
concurrent flow with ``max_workers=2`` and ``max_async=256``. Target: wall time within
1.5x of one ``await asyncio.sleep(0.1)`` (the floor, timed on the same background loop).

Rows:
  floor       one await asyncio.sleep(0.1) on routilux's background loop
  execute     flow.execute(): coroutines on the background loop
  aexecute    await flow.aexecute(): coroutines on the caller's loop
  threads     for scale: each coroutine holding one of 2 threads (asyncio.run per
              activation, the approach the design avoids), 20 activations only; the 200
              would take 10x longer

Run: .venv/bin/python benchmarks/bench_async.py
(prints a table, writes benchmarks/results/bench_async.json)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_engine import Source as FanOut  # the same entry routine: emits count items

import routilux
from routilux import Flow, Routine


ACTIVATIONS = 200
NAP = 0.1
REPEATS = 5
TARGET = 1.5


class Nap(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", handler=self.take)

    async def take(self, value: Any = None, **_: Any) -> None:
        await asyncio.sleep(NAP)


def make_flow() -> Flow:
    flow = Flow(execution_strategy="concurrent", max_workers=2, max_async=256)
    flow.add_routine(FanOut(), "fan")
    flow.add_routine(Nap(), "nap")
    flow.connect("fan", "out", "nap", "input")
    return flow


def floor() -> float:
    async def one() -> float:
        start = time.perf_counter()
        await asyncio.sleep(NAP)
        return time.perf_counter() - start

    return routilux.run_async(one())


def bench_execute(flow: Flow) -> float:
    start = time.perf_counter()
    js = flow.execute("fan", {"count": ACTIVATIONS})
    wall = time.perf_counter() - start
    assert js.status == "completed", js.status
    assert js.routine_states["nap"]["activation_count"] == ACTIVATIONS
    return wall


def bench_aexecute(flow: Flow) -> float:
    async def main() -> float:
        start = time.perf_counter()
        js = await flow.aexecute("fan", {"count": ACTIVATIONS})
        wall = time.perf_counter() - start
        assert js.status == "completed", js.status
        return wall

    return asyncio.run(main())


def bench_threads(n: int) -> float:
    async def nap() -> None:
        await asyncio.sleep(NAP)

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: asyncio.run(nap()), range(n)))
    return time.perf_counter() - start


def main() -> int:
    with make_flow() as flow:
        bench_execute(flow)  # warm up: loop thread, worker threads
        floors = [floor() for _ in range(REPEATS)]
        execs = [bench_execute(flow) for _ in range(REPEATS)]
        aexecs = [bench_aexecute(flow) for _ in range(REPEATS)]
    threads = bench_threads(20)
    one = statistics.median(floors)
    ex, aex = statistics.median(execs), statistics.median(aexecs)
    rows = [
        ("floor: one await asyncio.sleep(0.1)", one, 1.0),
        (f"execute: {ACTIVATIONS} async activations, 2 workers", ex, ex / one),
        (f"aexecute: {ACTIVATIONS} async activations, 2 workers", aex, aex / one),
        ("threads: 20 activations holding 2 threads", threads, threads / one),
    ]
    title = f"scenario (median of {REPEATS})"
    print(f"{title:56} {'wall s':>8}  x floor")
    for name, wall, ratio in rows:
        print(f"{name:56} {wall:8.3f}  {ratio:6.2f}")
    ok = max(ex, aex) / one <= TARGET
    print(f"target: within {TARGET}x of the floor -> {'met' if ok else 'MISSED'}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_async.json").write_text(
        json.dumps(
            {
                "python": sys.version,
                "activations": ACTIVATIONS,
                "nap_s": NAP,
                "max_workers": 2,
                "max_async": 256,
                "floor_s": one,
                "execute_s": ex,
                "aexecute_s": aex,
                "execute_x_floor": ex / one,
                "aexecute_x_floor": aex / one,
                "threads_20_activations_s": threads,
                "target_x_floor": TARGET,
                "target_met": ok,
                "runs": {"floor": floors, "execute": execs, "aexecute": aexecs},
            },
            indent=2,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

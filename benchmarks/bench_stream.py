"""
Memory of a streamed job consumed slowly: ``flow.stream`` holds at most ``buffer_size``
events, so a slow consumer holds the job back instead of letting events pile up.

Scenario (issue "Streaming and timeouts"): one handler emits N events (N = 1,000 and
100,000) in a flow whose history is bounded (``history_limit=100``), so that the job itself
keeps nothing per event; the consumer does a little work per event, more than the job does
(it is the slow side). Python's allocation peak (tracemalloc) is measured for each run.
Target: the 100,000-event stream's peak within 1.5x of the 1,000-event stream's peak (the
floor, measured in the same run): memory does not grow with the stream's length.

Rows:
  execute     the job without a stream (no events made): the job's own memory
  stream N    flow.stream(..., buffer_size=100), consumed slowly (both streams fill it);
              also the buffer's peak length
  list N      for contrast: every event kept by the consumer (list(flow.stream(...)))

Run: .venv/bin/python benchmarks/bench_stream.py
(prints a table, writes benchmarks/results/bench_stream.json)
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_engine import Source  # emits ``count`` events ``out``

from routilux import Flow


SMALL = 1_000
LARGE = 100_000
TARGET = 1.5
BUFFER = 100


def make_flow() -> Flow:
    flow = Flow(execution_strategy="sequential", history_limit=100)
    flow.add_routine(Source(), "src")
    return flow


def slow_consume(flow: Flow, count: int) -> tuple[int, int]:
    # A consumer slower than the job: some work per event. Returns (events, buffer peak).
    stream = flow.stream("src", {"count": count}, buffer_size=BUFFER)
    seen = 0
    for _event in stream:
        seen += 1
        sum(range(300))
    return seen, stream.buffer.peak


def measure(run: Callable[[], Any]) -> tuple[int, float, Any]:
    # (allocation peak in bytes, wall seconds, the run's result)
    tracemalloc.start()
    t0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, wall, result


def main() -> int:
    with make_flow() as flow:
        slow_consume(flow, SMALL)  # warm up: the pool's thread, imports
        rows: list[tuple[str, int, float, Any]] = []
        for count in (SMALL, LARGE):
            peak, wall, _ = measure(lambda c=count: flow.execute("src", {"count": c}))
            rows.append((f"execute {count:,} emits (no stream)", peak, wall, None))
        for count in (SMALL, LARGE):
            peak, wall, (seen, buffered) = measure(lambda c=count: slow_consume(flow, c))
            assert seen == count + 3, seen  # job_started, activation_started, job_finished
            rows.append((f"stream {count:,} events, slow consumer", peak, wall, buffered))
        for count in (SMALL, LARGE):
            peak, wall, events = measure(lambda c=count: list(flow.stream("src", {"count": c})))
            rows.append((f"list {count:,} events (all kept, contrast)", peak, wall, None))
            del events
    floor = rows[2][1]
    print(f"{'scenario':46} {'peak KiB':>10} {'x floor':>8} {'wall s':>8} {'buffer':>7}")
    for name, peak, wall, buffered in rows:
        extra = f"{buffered:7d}" if buffered is not None else ""
        print(f"{name:46} {peak / 1024:10.0f} {peak / floor:8.2f} {wall:8.3f} {extra}")
    ratio = rows[3][1] / floor
    ok = ratio <= TARGET
    print(
        f"target: 100,000-event stream within {TARGET}x of the 1,000-event one -> "
        f"{ratio:.2f}x, {'met' if ok else 'MISSED'}"
    )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_stream.json").write_text(
        json.dumps(
            {
                "python": sys.version,
                "rows": [
                    {"scenario": n, "peak_bytes": p, "wall_s": w, "buffer_peak": b}
                    for n, p, w, b in rows
                ],
                "large_x_small_stream": ratio,
                "target": TARGET,
                "target_met": ok,
            },
            indent=2,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

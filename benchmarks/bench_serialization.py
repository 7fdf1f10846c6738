"""
Benchmark of JobState serialization and of a pause -> save -> load -> resume round trip.

Run with ``python benchmarks/bench_serialization.py``. A JobState with 100,000 history
records, 10,000 shared-log entries and 1,000 shared-data keys is serialized, written with
``json.dumps``, read with ``json.loads`` and deserialized; the floor is ``json.dumps`` /
``json.loads`` of the same data as plain dicts, run in the same process. Then a small flow
is paused from inside a handler, saved as Flow and JobState JSON, loaded into a fresh
Flow and JobState, resumed and waited for; median and maximum of that round trip.

Bars (issue 4): serialize <= 0.10 s, deserialize <= 0.17 s (3x routilux 0.9 on this
machine), round trip max <= 5 ms. Results go to ``benchmarks/results/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from routilux import Flow, JobState, Routine
from routilux.job_state import ExecutionRecord
from routilux.registry import register_routine


RECORDS = 100_000
LOG_ENTRIES = 10_000
SHARED_KEYS = 1_000
SERIALIZE_BAR = 0.10
DESERIALIZE_BAR = 0.17
ROUND_TRIP_BAR = 0.005


def build_job() -> JobState:
    """
    Build the big JobState: history, shared log and shared data of typical shapes.
    """
    js = JobState("bench-flow")
    start = datetime(2025, 1, 1, 12, 0, 0)
    js.execution_history = [
        ExecutionRecord(
            f"routine_{i % 20}",
            "output" if i % 3 else "start",
            {"index": i, "value": f"item-{i}", "score": i * 0.5},
            start + timedelta(microseconds=i * 37),
        )
        for i in range(RECORDS)
    ]
    js.shared_log = [
        {"index": i, "message": f"processed item {i}", "timestamp": start.isoformat()}
        for i in range(LOG_ENTRIES)
    ]
    js.shared_data = {
        f"key_{i}": {"count": i, "tags": ["a", "b"], "ok": i % 2 == 0} for i in range(SHARED_KEYS)
    }
    js.routine_states = {
        f"routine_{i}": {"status": "completed", "execution_time": 0.01 * i} for i in range(20)
    }
    js.status = "paused"
    return js


def plain_copy(js: JobState) -> dict[str, Any]:
    """
    The same data as plain dicts, built before timing (the floor's input).
    """
    return {
        "flow_id": js.flow_id,
        "job_id": js.job_id,
        "status": js.status,
        "routine_states": js.routine_states,
        "execution_history": [
            {
                "routine_id": r.routine_id,
                "event_name": r.event_name,
                "data": r.data,
                "timestamp": r.timestamp.isoformat(),
            }
            for r in js.execution_history
        ],
        "shared_data": js.shared_data,
        "shared_log": js.shared_log,
    }


def best_of(runs: int, func: Any) -> tuple[float, Any]:
    """
    Return the best time of ``runs`` calls of ``func`` and the last result.
    """
    best = float("inf")
    result = None
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - t0)
    return best, result


@register_routine(name="bench.serialization.Asker")
class Asker(Routine):
    """
    Entry routine: emits two events, stores a deferred one and pauses its own job.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.ask)
        self.define_event("out", ["n"])

    def ask(self, **_: Any) -> None:
        """
        Emit, defer and pause.
        """
        ctx = self.get_execution_context()
        assert ctx is not None
        self.emit("out", n=1)
        self.emit("out", n=2)
        self.emit_deferred_event("out", n=0)
        ctx.flow.pause(ctx.job_state, reason="await user")


@register_routine(name="bench.serialization.Collector")
class Collector(Routine):
    """
    Downstream routine: writes what it receives into the shared data.
    """

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", handler=self.take)

    def take(self, n: int = 0, **_: Any) -> None:
        """
        Store ``n``.
        """
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data(f"n{n}", n)


def build_flow() -> Flow:
    """
    The small flow of the round trip.
    """
    flow = Flow(flow_id="bench-resume")
    flow.add_routine(Asker(), "ask")
    flow.add_routine(Collector(), "collect")
    flow.connect("ask", "out", "collect", "in")
    return flow


def round_trips(count: int, folder: Path) -> list[float]:
    """
    Time ``count`` pause -> save -> load -> resume -> completed round trips.
    """
    flow = build_flow()
    flow_path = folder / "flow.json"
    job_path = folder / "job.json"
    times = []
    for _ in range(count + 3):
        js = flow.execute("ask")
        assert js.status == "paused", js.status
        t0 = time.perf_counter()
        flow_path.write_text(json.dumps(flow.serialize()), encoding="utf-8")
        js.save(job_path)
        fresh = Flow()
        fresh.deserialize(json.loads(flow_path.read_text(encoding="utf-8")))
        loaded = JobState.load(job_path)
        fresh.resume(loaded)
        done = loaded.wait_for_completion(timeout=10)
        elapsed = time.perf_counter() - t0
        assert done, loaded.status
        assert loaded.status == "completed", loaded.status
        assert loaded.shared_data == {"n0": 0, "n1": 1, "n2": 2}, loaded.shared_data
        fresh.shutdown()
        times.append(elapsed)
    flow.shutdown()
    return times[3:]  # the first runs warm caches up


def big_job(runs: int) -> dict[str, float]:
    """
    Time the big job's serialize, dumps, loads and deserialize against the floor; return
    the best times and the document's size in bytes.
    """
    js = build_job()
    plain = plain_copy(js)
    floor_dumps, plain_text = best_of(runs, lambda: json.dumps(plain))
    floor_loads, _ = best_of(runs, lambda: json.loads(plain_text))
    ser, doc = best_of(runs, js.serialize)
    dumps, text = best_of(runs, lambda: json.dumps(doc))
    loads, parsed = best_of(runs, lambda: json.loads(text))

    def load() -> JobState:
        fresh = JobState()
        fresh.deserialize(parsed)
        return fresh

    deser, loaded = best_of(runs, load)
    assert len(loaded.execution_history) == RECORDS
    assert loaded.execution_history[-1] == js.execution_history[-1]
    assert loaded.shared_data == js.shared_data
    assert loaded.shared_log == js.shared_log
    return {
        "floor_dumps": floor_dumps,
        "floor_loads": floor_loads,
        "serialize": ser,
        "dumps": dumps,
        "loads": loads,
        "deserialize": deser,
        "size": len(text.encode("utf-8")),
    }


def main(argv: list[str] | None = None) -> int:
    """
    Run the benchmark, print a table and write the JSON results.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=5, help="best of N for the big job")
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args(argv)

    big = big_job(args.runs)
    ser, dumps, loads, deser = big["serialize"], big["dumps"], big["loads"], big["deserialize"]
    floor_dumps, floor_loads, size = big["floor_dumps"], big["floor_loads"], big["size"]
    # The round trip of the small flow runs once the big job's copies are gone (they were
    # locals of big_job): the collector's full passes over them are not part of a pause
    # and resume.
    gc.collect()
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    trips = sorted(round_trips(args.round_trips, folder))
    median, p99, worst = statistics.median(trips), trips[int(len(trips) * 0.99)], trips[-1]

    rows = [
        ("serialize (JobState -> dict)", ser, ser / floor_dumps, SERIALIZE_BAR),
        ("json.dumps of the document", dumps, dumps / floor_dumps, None),
        ("json.loads of the document", loads, loads / floor_loads, None),
        ("deserialize (dict -> JobState)", deser, deser / floor_loads, DESERIALIZE_BAR),
        ("floor: json.dumps of plain dicts", floor_dumps, 1.0, None),
        ("floor: json.loads of plain dicts", floor_loads, 1.0, None),
        ("round trip median", median, None, None),
        ("round trip 99th percentile", p99, None, None),
        ("round trip max", worst, None, ROUND_TRIP_BAR),
    ]
    print(f"JobState: {RECORDS:,} records, {LOG_ENTRIES:,} log entries, {SHARED_KEYS:,} keys")
    print(f"{'step':36} {'seconds':>10} {'x floor':>8} {'bar':>8}  ok")
    ok_all = True
    for name, seconds, ratio, bar in rows:
        ok = bar is None or seconds <= bar
        ok_all = ok_all and ok
        ratio_text = f"{ratio:8.2f}" if ratio is not None else " " * 8
        bar_text = f"{bar:8.3f}" if bar is not None else " " * 8
        print(f"{name:36} {seconds:10.4f} {ratio_text} {bar_text}  {'yes' if ok else 'NO'}")
    print(f"document: {size:,} bytes, {size / RECORDS:.1f} bytes per history record")

    results = {
        "benchmark": "serialization",
        "when": datetime.now().isoformat(),
        "python": sys.version,
        "machine": platform.platform(),
        "records": RECORDS,
        "log_entries": LOG_ENTRIES,
        "shared_keys": SHARED_KEYS,
        "seconds": {
            "serialize": ser,
            "json_dumps": dumps,
            "json_loads": loads,
            "deserialize": deser,
            "floor_json_dumps": floor_dumps,
            "floor_json_loads": floor_loads,
            "round_trip_median": median,
            "round_trip_p99": p99,
            "round_trip_max": worst,
        },
        "ratios_to_floor": {
            "serialize": ser / floor_dumps,
            "deserialize": deser / floor_loads,
            "serialize_plus_dumps": (ser + dumps) / floor_dumps,
            "loads_plus_deserialize": (loads + deser) / floor_loads,
        },
        "bytes": size,
        "bytes_per_record": size / RECORDS,
        "bars": {
            "serialize": SERIALIZE_BAR,
            "deserialize": DESERIALIZE_BAR,
            "round_trip_max": ROUND_TRIP_BAR,
        },
        "passed": ok_all,
    }
    out = folder / "bench_serialization.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"results written to {out}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())

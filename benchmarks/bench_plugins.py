"""
Chain throughput with no plugin, with routilux-handlers installed but unconfigured, with one
no-op plugin (every job hook), and with the audit plugin (JSON lines to a temp file).

Run: ``.venv/bin/python benchmarks/bench_plugins.py [--quick]``. Prints a table (ratios to the
no-plugin run) and writes ``benchmarks/results/bench_plugins.json``. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from routilux import Flow, PluginManager, Routine, hookimpl


class Head(Routine):
    """Entry: emits ``items`` values down the chain."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("out", ["value"])

    def go(self, items: int = 1, **_: Any) -> None:
        for i in range(items):
            self.emit("out", value=i)


class Link(Routine):
    """Passes the value on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.define_event("out", ["value"])

    def take(self, value: Any = None, **_: Any) -> None:
        self.emit("out", value=value)


class NoOp:
    """One plugin implementing every job hook, doing nothing."""

    @hookimpl
    def routilux_job_started(self, flow: Any, job_state: Any) -> None:
        pass

    @hookimpl
    def routilux_job_status_changed(self, old: str, new: str) -> None:
        pass

    @hookimpl
    def routilux_job_finished(self, job_state: Any) -> None:
        pass

    @hookimpl
    def routilux_activation_started(self, routine_id: Any, slot_name: str) -> None:
        pass

    @hookimpl
    def routilux_activation_finished(self, routine_id: Any, duration: float) -> None:
        pass

    @hookimpl
    def routilux_activation_failed(self, routine_id: Any, error: BaseException) -> None:
        pass

    @hookimpl
    def routilux_event_emitted(self, routine_id: Any, event_name: str) -> None:
        pass

    @hookimpl
    def routilux_output_sent(self, routine_id: Any, output_type: str) -> None:
        pass

    @hookimpl
    def routilux_job_state_changed(self, change: Any) -> None:
        pass


def build(pm: PluginManager, length: int) -> Flow:
    flow = Flow("bench", plugins=pm)
    flow.add_routine(Head(), "head")
    prev = "head"
    for i in range(length):
        flow.add_routine(Link(), f"l{i}")
        flow.connect(prev, "out", f"l{i}", "input")
        prev = f"l{i}"
    return flow


def measure(
    cases: list[tuple[str, PluginManager]], length: int, items: int, jobs: int, repeats: int
) -> list[float]:
    """
    Best activations per second of each case over ``repeats`` runs of ``jobs`` sequential jobs.

    The cases take turns within each repeat, so that a busy moment of the machine does not
    fall on one case only.
    """
    activations = jobs * (1 + length * items)
    flows = [build(pm, length) for _, pm in cases]
    best = [float("inf")] * len(cases)
    try:
        for flow in flows:
            flow.execute("head", {"items": 1})  # warm up: pool, entry points
        for _ in range(repeats):
            for k, flow in enumerate(flows):
                t0 = time.perf_counter()
                for _ in range(jobs):
                    js = flow.execute("head", {"items": items})
                    assert js.status == "completed", js.status
                best[k] = min(best[k], time.perf_counter() - t0)
    finally:
        for flow in flows:
            flow.shutdown()
    return [activations / t for t in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller run (smoke test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    length, items, jobs, repeats = (5, 40, 5, 2) if args.quick else (10, 200, 10, 5)

    from routilux_handlers import AuditTrail

    with tempfile.TemporaryDirectory() as tmp:
        audit = AuditTrail(Path(tmp) / "audit.jsonl")
        cases: list[tuple[str, PluginManager]] = []
        cases.append(("no plugin", PluginManager(load_entry_points=False)))
        installed = PluginManager(load_entry_points=True)  # routilux-handlers, unconfigured
        cases.append(("handlers installed, unconfigured", installed))
        noop = PluginManager(load_entry_points=False)
        noop.register(NoOp())
        cases.append(("one no-op plugin (all hooks)", noop))
        audited = PluginManager(load_entry_points=False)
        audited.register(audit)
        cases.append(("audit plugin (JSON lines)", audited))

        rates = measure(cases, length, items, jobs, repeats)
        rows: list[dict[str, Any]] = [
            {"case": name, "activations_per_s": rate, "relay": pm.relay() is not None}
            for (name, pm), rate in zip(cases, rates, strict=True)
        ]
        audit.close()

    base = rows[0]["activations_per_s"]
    for row in rows:
        row["ratio"] = row["activations_per_s"] / base
    print(f"chain of {length} links, {items} items/job, {jobs} jobs, best of {repeats}")
    print(f"{'case':36} {'activations/s':>14} {'ratio':>7} {'hook calls':>10}")
    for row in rows:
        calls = "yes" if row["relay"] else "none"
        print(f"{row['case']:36} {row['activations_per_s']:14,.0f} {row['ratio']:7.2f} {calls:>10}")

    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "bench_plugins",
        "when": datetime.now(timezone.utc).isoformat(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "params": {"length": length, "items": items, "jobs": jobs, "repeats": repeats},
        "rows": rows,
    }
    path = args.out / "bench_plugins.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

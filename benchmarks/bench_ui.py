"""
Benchmark of the routilux-ui pages on a SQLite store of 10,000 jobs (not a timed test).

Run with ``python benchmarks/bench_ui.py``. It writes a store of 10,000 jobs of the approval
example (a fifth of them with a checkpoint: paused, completed or failed with errors) and one
job with 1,000 history records, then times, in this process, each request through the ASGI
app (Starlette's TestClient: the server's time, no network):

- ``GET /`` and ``GET /api/jobs?limit=50`` *cold*: the store is listed in the request (the
  listing cache is emptied first) and the page's error counts read;
- the same *warm*: the listing is the one read at most ``poll_interval`` seconds ago (as
  while a jobs page is open: its live updates keep it fresh), error counts cached;
- ``GET /jobs/{id}`` of the job with 1,000 history records;
- the floor: ``store.list_jobs()`` alone, the read every cold jobs page pays.

Bars (the issue): jobs page and ``/api/jobs?limit=50`` under 100 ms, the 1,000-record job
page under 200 ms. Median and maximum of ``--repeat`` requests each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from routilux.store import SqliteJobStore, flow_fingerprint
from routilux_ui import create_app


JOBS = 10_000
HISTORY = 1_000
LIST_BAR = 0.100
JOB_BAR = 0.200
APPROVAL = Path(__file__).parents[1] / "examples" / "approval" / "flow.json"


def _state(job_id: str, status: str, history: int, errors: int) -> dict[str, Any]:
    # A checkpoint as the engine writes it, with ``history`` records and ``errors`` errors.
    stamp = "2026-01-01T12:00:00.000000"
    return {
        "job_id": job_id,
        "flow_id": "expense-approval",
        "status": status,
        "checkpoint_seq": 1,
        "routine_states": {"ask": {"status": "completed", "activation_count": history}},
        "execution_history": [
            {"routine_id": "ask", "event_name": "output", "data": {"i": i}, "timestamp": stamp}
            for i in range(history)
        ],
        "output_log": [],
        "errors": [
            {
                "routine_id": "decide",
                "slot": "input",
                "error_type": "ValueError",
                "message": f"bad amount {i}",
                "attempt": 1,
                "time": stamp,
                "strategy": "continue",
                "traceback": "Traceback (most recent call last):\n  ...\nValueError: bad\n",
            }
            for i in range(errors)
        ],
        "pending_tasks": [],
        "failed_tasks": [],
        "pause_points": [],
        "shared_data": {},
    }


def build(path: Path) -> tuple[SqliteJobStore, str]:
    """Write the store; return it and the id of the job with 1,000 history records."""
    store = SqliteJobStore(path)
    flow = json.loads(APPROVAL.read_text(encoding="utf-8"))
    fingerprint = store.save_flow(flow)
    assert fingerprint == flow_fingerprint(flow)
    statuses = ("paused", "completed", "failed")
    for i in range(JOBS):
        job_id = f"job-{i:05d}"
        store.create_job(job_id, "expense-approval", fingerprint, entry_routine_id="ask")
        if i % 5 == 0:
            status = statuses[i // 5 % 3]
            store.save_checkpoint(job_id, _state(job_id, status, 3, 2 if status == "failed" else 0))
    big = "job-big-history"
    store.create_job(big, "expense-approval", fingerprint, entry_routine_id="ask")
    store.save_checkpoint(big, _state(big, "completed", HISTORY, 3))
    return store, big


def timed(
    call: Callable[[], object], repeat: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Run ``call`` ``repeat`` times (``before`` first, untimed); return the seconds each took."""
    out = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the store, time the requests, print a table; exit 1 when a bar is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        store, big = build(Path(folder) / "jobs.db")
        print(f"store of {JOBS:,} jobs written in {time.perf_counter() - start:.1f} s")
        app = create_app(store, poll_interval=60.0)
        index = app.state.ui.index
        rows: list[tuple[str, list[float], float | None]] = []
        with TestClient(app, base_url="http://127.0.0.1:8237") as client:

            def get(path: str) -> Callable[[], object]:
                def call() -> object:
                    response = client.get(path)
                    assert 200 == response.status_code, (path, response.text[:200])
                    return response

                return call

            rows.append(
                ("floor: store.list_jobs() of 10,000", timed(store.list_jobs, args.repeat), None)
            )
            for label, path in (
                ("jobs page GET /", "/"),
                ("GET /api/jobs?limit=50", "/api/jobs?limit=50"),
            ):
                get(path)()  # the error counts of the first page are read once
                cold = timed(get(path), args.repeat, before=index.invalidate)
                rows.append((f"{label}, cold (lists the store)", cold, LIST_BAR))
                rows.append(
                    (f"{label}, warm (listing kept)", timed(get(path), args.repeat), LIST_BAR)
                )
            rows.append(
                (
                    "GET /api/jobs?status=failed&q=job-09&offset=50, warm",
                    timed(get("/api/jobs?status=failed&q=job-09&limit=50&offset=50"), args.repeat),
                    LIST_BAR,
                )
            )
            rows.append(
                (
                    f"job page of {HISTORY:,} history records",
                    timed(get(f"/jobs/{big}"), args.repeat),
                    JOB_BAR,
                )
            )
            rows.append(
                (
                    f"GET /api/jobs/ID ({HISTORY:,} records)",
                    timed(get(f"/api/jobs/{big}"), args.repeat),
                    JOB_BAR,
                )
            )
        store.close()
    missed = 0
    print(f"\n{'request':<58} {'median':>9} {'max':>9}  bar")
    for label, times, bar in rows:
        median, worst = statistics.median(times), max(times)
        verdict = "" if bar is None else ("ok" if median < bar else "MISSED")
        missed += verdict == "MISSED"
        shown = "" if bar is None else f"{bar * 1000:.0f} ms {verdict}"
        print(f"{label:<58} {median * 1000:7.1f} ms {worst * 1000:7.1f} ms  {shown}")
    print(f"\nPython {sys.version.split()[0]}; medians against the bars")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

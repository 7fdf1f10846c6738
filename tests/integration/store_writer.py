"""
A subprocess for the concurrency test: creates and runs N jobs on one store.

Usage: ``python store_writer.py DB PREFIX N GO_FILE``; waits for GO_FILE to exist first so
that two writers start together.
"""

from __future__ import annotations

import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cli_routines import flow_data

from routilux.store import SqliteJobStore, create_job, run_job


def main() -> None:
    db, prefix, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    deadline = time.monotonic() + 10
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)  # the start signal comes from the other process
    if not os.path.exists(go):
        sys.exit(f"store_writer: the start signal {go} never came")
    store = SqliteJobStore(db)
    data = flow_data(f"flow-{prefix}", os.devnull)
    for n in range(count):
        job_id = create_job(
            store, data, "src", {"n": 5}, job_id=f"{prefix}-{n}", options={"checkpoint_every": 1}
        )
        state = run_job(job_id, store)
        assert state.status == "completed", state.status
    store.close()


if __name__ == "__main__":
    main()

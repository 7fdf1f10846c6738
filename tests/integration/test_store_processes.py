"""
Several processes on one SQLite job store at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from routilux.store import SqliteJobStore


WRITER = Path(__file__).with_name("store_writer.py")


class TestTwoWriters:
    def test_two_processes_lose_nothing(self, tmp_path: Path) -> None:
        """Two processes creating and checkpointing jobs into one store lose no job or state."""
        db = tmp_path / "jobs.db"
        go = tmp_path / "go"
        SqliteJobStore(db).close()  # create the schema once, as `routilux run` would
        count = 15
        procs = [
            subprocess.Popen(
                [sys.executable, str(WRITER), str(db), prefix, str(count), str(go)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for prefix in ("a", "b")
        ]
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=10)
            assert 0 == proc.returncode, err
        with SqliteJobStore(db) as store:
            records = store.list_jobs()
            assert 2 * count == len(records)
            assert {"completed"} == {r.status for r in records}
            for prefix in ("a", "b"):
                assert count == len(store.list_jobs(flow_id=f"flow-{prefix}"))
            for record in records:
                state = store.load_job(record.job_id).state
                assert state is not None
                assert 5 == state["routine_states"]["rec"]["activation_count"]
                assert 1 == record.attempt

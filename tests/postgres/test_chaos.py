"""
Chaos on a job store, SQLite and PostgreSQL alike: 20 concurrent jobs checkpointed after
every activation, runners killed with SIGKILL at random moments, two resumers racing for
each stranded job (one of them killed now and then). At the end, every job's stored status
is what its last runner reported, every completed job holds each item exactly once, and no
job is left running or queued without a live owner.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from routilux import Flow
from routilux.store import open_store


INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
HELPERS = INTEGRATION / "cli_routines.py"
sys.path.insert(0, str(INTEGRATION))
import cli_routines  # noqa: E402


JOBS = 20
ITEMS = 6
WAIT = 10.0


def _flow(side: Path) -> dict[str, Any]:
    # src emits ITEMS items to two recorders that work concurrently.
    flow = Flow("chaos", execution_strategy="concurrent", max_workers=3)
    flow.add_routine(cli_routines.Emit(), "src")
    for name in ("a", "b"):
        record = cli_routines.Record()
        record.set_config(path=str(side), delay=0.02)
        flow.add_routine(record, name)
        flow.connect("src", "item", name, "input")
    return flow.serialize()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "jobs.db")
    dsn: str = request.getfixturevalue("clean_db")
    return dsn


def _cli(*args: str, store: str, cwd: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "routilux.cli", *args, "--store", store, "--import", str(HELPERS)]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _reported(proc: subprocess.Popen[str], out: str) -> str | None:
    # The status a runner printed as its outcome (first line "job ID STATUS").
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first.startswith("job ") else None


def _wait_for_row(store: Any, job: str, proc: subprocess.Popen[str]) -> None:
    # A runner is killed only once it has written its job (killed earlier, it wrote nothing).
    from routilux.exceptions import JobNotFoundError

    deadline = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        try:
            store.job_status(job)
            return
        except JobNotFoundError:
            if proc.poll() is not None:
                return
        deadline.wait(0.01)
    pytest.fail(f"runner of {job} never wrote its job")


def test_chaos(store_url: str, tmp_path: Path) -> None:
    """Kill -9 runners and racing resumers at random: the store holds the truth."""
    rng = random.Random(20261204)
    side = tmp_path / "side.txt"
    path = tmp_path / "chaos.json"
    path.write_text(json.dumps(_flow(side)), encoding="utf-8")
    ids = [f"chaos-{k}" for k in range(JOBS)]
    last_report: dict[str, str | None] = {}
    runners = {
        job: _cli(
            "run",
            str(path),
            "--param",
            f"n={ITEMS}",
            "--checkpoint-every",
            "1",
            "--job-id",
            job,
            "-q",
            store=store_url,
            cwd=tmp_path,
        )
        for job in ids
    }
    doomed = set(rng.sample(ids, JOBS // 3))
    pause = threading.Event()  # waited on only to pick random kill moments

    def finish(job: str, proc: subprocess.Popen[str]) -> None:
        out, err = proc.communicate(timeout=WAIT)
        if proc.returncode in (-signal.SIGKILL,):
            return
        assert "Traceback" not in err, err
        report = _reported(proc, out)
        if proc.returncode == 2:
            assert err.startswith("routilux: error: "), err  # a refused runner: one line
            assert len(err.strip().splitlines()) == 1, err
        else:
            last_report[job] = report

    with open_store(store_url) as store:
        for job in sorted(doomed):
            _wait_for_row(store, job, runners[job])
            pause.wait(rng.uniform(0.0, 0.3))
            runners[job].send_signal(signal.SIGKILL)
    for job, proc in runners.items():
        finish(job, proc)

    # Resume what was left running by a dead runner: two resumers race for each job, and
    # now and then one of them is killed too; repeat until every job rests.
    with open_store(store_url) as store:
        for _ in range(6):
            stranded = [r.job_id for r in store.list_jobs() if r.status in ("running", "pending")]
            if not stranded:
                break
            racers = []
            for job in stranded:
                racers += [(job, _cli("resume", job, "-q", store=store_url, cwd=tmp_path))]
                racers += [(job, _cli("resume", job, "-q", store=store_url, cwd=tmp_path))]
            for _, proc in racers:
                if rng.random() < 0.15:
                    pause.wait(rng.uniform(0.0, 0.2))
                    proc.send_signal(signal.SIGKILL)
            for job, proc in racers:
                finish(job, proc)
        records = {r.job_id: r for r in store.list_jobs()}
        assert set(ids) == set(records)
        leftover = {j: r.status for j, r in records.items() if r.status not in ("completed",)}
        assert {} == leftover, "jobs left not completed"
        for job in ids:
            record = store.load_job(job)
            # A runner killed after its job's last checkpoint reported nothing.
            assert last_report.get(job, record.status) == record.status, job
            done = Counter(
                (item["routine_id"], item["data"]["i"])
                for item in record.state["execution_history"]
                if item["event_name"] == "done"
            )
            expected = Counter({(name, i): 1 for name in ("a", "b") for i in range(ITEMS)})
            assert expected == done, job
    # At least once: every activation's side effect is there (a re-run may repeat some).
    keys = {line.split()[0] for line in side.read_text().splitlines()}
    assert len(keys) == JOBS * 2 * ITEMS

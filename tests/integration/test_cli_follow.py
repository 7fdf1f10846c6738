"""
``routilux run --follow``, ``resume --follow`` and ``retry --follow``: the job's events, live,
one line each, after the progress ``[started/known]``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from routilux.store import SqliteJobStore


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HELPERS = Path(__file__).with_name("cli_routines.py")

sys.path.insert(0, str(HELPERS.parent))
from cli_routines import flow_data  # noqa: E402


_LINE = re.compile(r"^\[(\d+)/(\d+)\] \d\d:\d\d:\d\d\.\d{3} (\w+)(.*)$")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "routilux.cli", *args, "--store", str(tmp_path / "jobs.db")]
    return subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=10, check=False
    )


def event_lines(stdout: str) -> list[tuple[int, int, str, str]]:
    """The event lines of an output: (started, known, kind, rest)."""
    found = []
    for line in stdout.splitlines():
        match = _LINE.match(line)
        if match is not None:
            found.append((int(match[1]), int(match[2]), match[3], match[4]))
    return found


def test_run_follow_prints_every_event_with_progress(tmp_path: Path) -> None:
    flow = tmp_path / "flow.json"
    flow.write_text(json.dumps(flow_data("f", str(tmp_path / "side.txt"))), encoding="utf-8")
    proc = cli(tmp_path, "run", str(flow), "--param", "n=2", "--follow", "--import", str(HELPERS))
    assert 0 == proc.returncode, proc.stderr
    lines = event_lines(proc.stdout)
    assert [(s, k, kind, rest) for s, k, kind, rest in lines] == [
        (0, 1, "job_started", " src"),
        (1, 1, "activation_started", " src.trigger"),
        (1, 2, "emitted", " src.item {'i': 0}"),
        (1, 3, "emitted", " src.item {'i': 1}"),
        (2, 3, "activation_started", " rec.input"),
        (2, 3, "emitted", " rec.done {'i': 0}"),
        (3, 3, "activation_started", " rec.input"),
        (3, 3, "emitted", " rec.done {'i': 1}"),
        (3, 3, "job_finished", " completed"),
    ]
    assert "completed" in proc.stdout  # the outcome still follows


def test_resume_follow_prints_the_resumed_events(tmp_path: Path) -> None:
    flow = str(EXAMPLES / "approval" / "flow.json")
    params = ["--param", "amount=40", "--param", "employee=bo", "--param", "reason=lunch"]
    first = cli(tmp_path, "run", flow, *params, "--follow")
    assert 3 == first.returncode, first.stderr
    kinds = [kind for _, _, kind, _ in event_lines(first.stdout)]
    assert kinds[0] == "job_started"
    assert kinds[-1] == "paused"
    with SqliteJobStore(tmp_path / "jobs.db") as store:
        (job_id,) = [r.job_id for r in store.list_jobs()]
    done = cli(tmp_path, "resume", job_id, "--set", "answer=no", "--follow")
    assert 0 == done.returncode, done.stderr
    lines = event_lines(done.stdout)
    assert lines[0][2:] == ("resumed", " from paused")
    assert lines[-1][2:] == ("job_finished", " completed")
    assert any(kind == "emitted" and "decide.rejected" in rest for _, _, kind, rest in lines)
    started, known = lines[-1][:2]
    assert started == known > 0


def test_retry_follow_prints_the_retried_events(tmp_path: Path) -> None:
    data = flow_data("again", str(tmp_path / "side.txt"))
    data["routines"]["src"]["type"] = "tests.FailOnce"
    data["routines"]["src"]["config"] = {"marker": str(tmp_path / "failed-once")}
    flow = tmp_path / "again.json"
    flow.write_text(json.dumps(data), encoding="utf-8")
    first = cli(
        tmp_path,
        "run",
        str(flow),
        "--param",
        "n=2",
        "--job-id",
        "r1",
        "--follow",
        "--import",
        str(HELPERS),
    )
    assert 1 == first.returncode, first.stderr
    assert event_lines(first.stdout)[-1][2:] == ("job_finished", " failed")
    again = cli(tmp_path, "retry", "r1", "--follow", "--import", str(HELPERS))
    assert 0 == again.returncode, again.stderr
    lines = event_lines(again.stdout)
    assert lines[0][2:] == ("resumed", " from failed")
    assert [rest for _, _, kind, rest in lines if kind == "emitted"] == [
        " src.item {'i': 0}",
        " src.item {'i': 1}",
        " rec.done {'i': 0}",
        " rec.done {'i': 1}",
    ]
    assert lines[-1][2:] == ("job_finished", " completed")
    assert "job r1 completed" in again.stdout

"""
The ``routilux`` command end to end, in subprocesses, on a temporary job store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import damage_checkpoint

from routilux.cli import main
from routilux.exceptions import JobNotFoundError
from routilux.store import SqliteJobStore


ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HELPERS = Path(__file__).with_name("cli_routines.py")

sys.path.insert(0, str(HELPERS.parent))
from cli_routines import flow_data  # noqa: E402


def _cli(
    *args: str, store: Path, cwd: Path, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "routilux.cli", *args, "--store", str(store)]
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _bare(*args: str, cwd: Path, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    # The command without the --store _cli adds (for commands that take none, and for
    # tests that pass their own).
    cmd = [sys.executable, "-m", "routilux.cli", *args]
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("routilux: error: "), proc.stderr


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    # Poll a condition another process makes true, with a deadline.
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    return {"store": tmp_path / "jobs.db", "cwd": tmp_path}


def run(env: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return _cli(*args, store=env["store"], cwd=env["cwd"])


def job_ids(env: dict[str, Any]) -> list[str]:
    if not env["store"].exists():
        return []
    with SqliteJobStore(env["store"]) as store:
        return [r.job_id for r in store.list_jobs()]


def run_approval(env: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run the approval example with small parameters; it pauses for its person."""
    return run(
        env,
        "run",
        str(EXAMPLES / "approval" / "flow.json"),
        "--param",
        "amount=1",
        "--param",
        "employee=x",
        "--param",
        "reason=y",
    )


def write_flow(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class TestRun:
    def test_text_pipeline_completes(self, env: dict[str, Any]) -> None:
        """A flow of built-ins runs to completion: exit 0, status, result and job id."""
        proc = run(
            env,
            "run",
            str(EXAMPLES / "text_pipeline" / "flow.json"),
            "--param",
            'data={"title": "Hi", "body": "there"}',
        )
        assert 0 == proc.returncode, proc.stderr
        (job_id,) = job_ids(env)
        assert f"job {job_id} completed" in proc.stdout
        assert "clipped_text" in proc.stdout
        assert "\x1b" not in proc.stderr  # no progress line when stderr is not a terminal

    def test_failed_job_exits_1(self, env: dict[str, Any], tmp_path: Path) -> None:
        """An entry routine that raises fails the job: exit 1, stored as failed."""
        flow = {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "boom",
            "routines": {"b": {"type": "tests.Boom"}},
            "connections": [],
        }
        path = write_flow(tmp_path, "boom.json", flow)
        proc = run(env, "run", str(path), "--import", str(HELPERS))
        assert 1 == proc.returncode, proc.stderr
        with SqliteJobStore(env["store"]) as store:
            (record,) = store.list_jobs()
        assert "failed" == record.status

    def test_downstream_error_exits_5_and_is_printed(
        self, env: dict[str, Any], tmp_path: Path
    ) -> None:
        """An error after the entry routine (a TextClipper given "fifty" as its length)
        leaves the job completed, but the command prints the error after the status line
        and exits 5; show lists it too."""
        data = json.loads((EXAMPLES / "text_pipeline" / "flow.json").read_text())
        data["routines"]["clip"]["config"]["max_length"] = "fifty"
        proc = run(env, "run", str(write_flow(tmp_path, "fifty.json", data)), "--param", "data=x")
        assert 5 == proc.returncode, proc.stderr
        (job_id,) = job_ids(env)
        lines = proc.stdout.splitlines()
        assert f"job {job_id} completed" == lines[0]
        assert lines[1].startswith("  error in clip.input (attempt 1, went on without it): ")
        shown = run(env, "show", job_id)
        assert 0 == shown.returncode, shown.stderr
        assert "errors:" in shown.stdout
        assert "error in clip.input" in shown.stdout
        listed = json.loads(run(env, "show", job_id, "--json").stdout)
        assert ["clip"] == [e["routine_id"] for e in listed["errors"]]

    def test_cancelled_job_exits_4(self, env: dict[str, Any], tmp_path: Path) -> None:
        """A job cancelled while it runs ends the command with exit 4."""
        flow = {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "c",
            "routines": {"c": {"type": "tests.CancelSelf"}},
            "connections": [],
        }
        proc = run(env, "run", str(write_flow(tmp_path, "c.json", flow)), "--import", str(HELPERS))
        assert 4 == proc.returncode, proc.stderr
        assert "cancelled" in proc.stdout

    def test_json_outcome(self, env: dict[str, Any]) -> None:
        """--json prints the stored job as JSON."""
        proc = run(
            env,
            "run",
            str(EXAMPLES / "text_pipeline" / "flow.json"),
            "--json",
            "--param",
            "data=plain text",
        )
        assert 0 == proc.returncode, proc.stderr
        data = json.loads(proc.stdout)
        assert "completed" == data["status"]
        assert data["routine_states"]["clip"]["status"] == "completed"
        # The results the text output shows (events of the last routines) are there too.
        (result,) = data["results"]
        assert ("clip", "output") == (result["routine_id"], result["event_name"])
        assert "plain text" == result["data"]["clipped_text"]

    def test_duplicate_job_id_writes_nothing(self, env: dict[str, Any], tmp_path: Path) -> None:
        """A second run with a job id in use exits 2 and stores neither job nor flow."""
        one = flow_data("one", str(tmp_path / "one.txt"))
        two = flow_data("two", str(tmp_path / "two.txt"))
        first = run(
            env,
            "run",
            str(write_flow(tmp_path, "one.json", one)),
            "--import",
            str(HELPERS),
            "--job-id",
            "J1",
            "--param",
            "n=1",
        )
        assert 0 == first.returncode, first.stderr
        proc = run(
            env,
            "run",
            str(write_flow(tmp_path, "two.json", two)),
            "--import",
            str(HELPERS),
            "--job-id",
            "J1",
            "--param",
            "n=1",
        )
        assert 2 == proc.returncode
        _no_traceback(proc)
        assert "'J1' exists already" in proc.stderr
        assert not (tmp_path / "two.txt").exists()
        with SqliteJobStore(env["store"]) as store:
            assert ["J1"] == [r.job_id for r in store.list_jobs()]
            assert "one" == store.load_job("J1").flow_id
            with pytest.raises(JobNotFoundError):
                store.load_flow("two")


class TestBadInput:
    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            ("{not json", "invalid JSON at line 1 column 2"),
            ("[1, 2]", "expected a JSON object"),
            (
                json.dumps(
                    {
                        "format": "routilux.flow",
                        "version": 1,
                        "flow_id": "x",
                        "routines": {"a": {"type": "NoSuchRoutine"}},
                        "connections": [],
                    }
                ),
                "routines.a.type",
            ),
            (
                json.dumps(
                    {
                        "format": "routilux.flow",
                        "version": 1,
                        "flow_id": "x",
                        "routines": {"a": {"type": "TextClipper", "config": 3}},
                        "connections": [],
                    }
                ),
                "routines.a.config",
            ),
            (
                json.dumps(
                    {
                        "format": "routilux.flow",
                        "version": 1,
                        "flow_id": "",
                        "routines": {"a": {"type": "TextClipper"}},
                        "connections": [],
                    }
                ),
                "flow_id: expected a non-empty string, got ''",
            ),
        ],
        ids=["not-json", "not-object", "unknown-type", "bad-config", "empty-flow-id"],
    )
    def test_bad_flow_file(
        self, env: dict[str, Any], tmp_path: Path, content: str, expected: str
    ) -> None:
        """A malformed flow file exits 2 naming the file and the bad field; no job is stored."""
        path = tmp_path / "bad.json"
        path.write_text(content, encoding="utf-8")
        for command in ("run", "validate"):
            proc = run(env, command, str(path))
            assert 2 == proc.returncode
            assert str(path) in proc.stderr
            assert expected in proc.stderr
        assert [] == job_ids(env)

    def test_missing_file_and_bad_param(self, env: dict[str, Any]) -> None:
        """A missing file, a bad --param and an unknown entry exit 2 and store nothing."""
        flow = str(EXAMPLES / "text_pipeline" / "flow.json")
        assert 2 == run(env, "run", "nope.json").returncode
        assert 2 == run(env, "run", flow, "--param", "novalue").returncode
        proc = run(env, "run", flow, "--entry", "nosuch")
        assert 2 == proc.returncode
        assert "nosuch" in proc.stderr
        assert [] == job_ids(env)

    def test_usage_error_and_unknown_job(self, env: dict[str, Any]) -> None:
        """argparse usage errors and unknown job ids exit 2."""
        assert 2 == run(env, "frobnicate").returncode
        run(env, "run", str(EXAMPLES / "text_pipeline" / "flow.json"))
        for command in ("show", "resume", "cancel"):
            proc = run(env, command, "no-such-job")
            assert 2 == proc.returncode
            assert "no-such-job" in proc.stderr


class TestNoTraceback:
    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("raise RuntimeError('setup failed')", "RuntimeError: setup failed"),
            ("def broken(:\n    pass\n", "SyntaxError: "),
            ("import json\njson.loads('{')", "JSONDecodeError: "),
        ],
        ids=["runtime-error", "syntax-error", "other-error"],
    )
    def test_import_whose_code_raises(
        self, env: dict[str, Any], tmp_path: Path, code: str, expected: str
    ) -> None:
        """--import of a file or module whose code raises exits 2 naming it and the error."""
        (tmp_path / "badmod.py").write_text(code, encoding="utf-8")
        path = str(tmp_path / "badmod.py")
        for name in (path, "badmod"):
            proc = run(env, "routines", "--import", name)
            assert 2 == proc.returncode
            _no_traceback(proc)
            assert f"--import {name}: {expected}" in proc.stderr
        assert not env["store"].exists()

    def test_failed_import_is_not_kept(self, tmp_path: Path) -> None:
        """A file whose import failed is imported again (not skipped) by the next command."""
        marker = tmp_path / "ready"
        path = tmp_path / "flaky.py"
        path.write_text(
            "import os\n"
            "from routilux import Routine\n"
            "from routilux.registry import register_routine\n"
            f"if not os.path.exists({str(marker)!r}):\n"
            "    raise RuntimeError('not ready')\n"
            "@register_routine(name='tests.Flaky')\n"
            "class Flaky(Routine):\n"
            "    pass\n",
            encoding="utf-8",
        )
        assert 2 == main(["routines", "--import", str(path)])
        marker.touch()
        flow = write_flow(
            tmp_path,
            "flaky.json",
            {
                "format": "routilux.flow",
                "version": 1,
                "flow_id": "flaky",
                "routines": {"f": {"type": "tests.Flaky"}},
                "connections": [],
            },
        )
        assert 0 == main(["graph", str(flow), "--import", str(path)])

    def test_same_file_name_in_two_folders(self, env: dict[str, Any], tmp_path: Path) -> None:
        """--import of pa/routines.py and pb/routines.py imports both; one file twice is one."""
        for folder, name in (("pa", "tests.SameA"), ("pb", "tests.SameB")):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / "routines.py").write_text(
                "from routilux import Routine\n"
                "from routilux.registry import register_routine\n"
                f"@register_routine(name={name!r})\n"
                "class Same(Routine):\n"
                "    pass\n",
                encoding="utf-8",
            )
        a, b = str(tmp_path / "pa" / "routines.py"), str(tmp_path / "pb" / "routines.py")
        proc = run(env, "routines", "--json", "--import", a, "--import", b)
        assert 0 == proc.returncode, proc.stderr
        names = {row["name"] for row in json.loads(proc.stdout)}
        assert {"tests.SameA", "tests.SameB"} <= names
        # The same file twice (another spelling of its path) is imported once: a second
        # import would register another class under the taken name and fail.
        again = run(env, "routines", "--import", a, "--import", "pa/../pa/routines.py")
        assert 0 == again.returncode, again.stderr

    def test_unusable_store_path(self, tmp_path: Path) -> None:
        """A folder, a file that is not SQLite, or an impossible folder: exit 2, named."""
        flow = str(EXAMPLES / "text_pipeline" / "flow.json")
        not_db = tmp_path / "notes.txt"
        not_db.write_text("just text " * 50, encoding="utf-8")
        cases = [
            (("jobs",), tmp_path, "unable to open database file"),
            (("jobs",), not_db, "file is not a database"),
            (("run", flow, "--param", "data=x"), not_db, "file is not a database"),
            (("run", flow, "--param", "data=x"), not_db / "jobs.db", "File exists"),
        ]
        for args, store, reason in cases:
            proc = _cli(*args, store=store, cwd=tmp_path)
            assert 2 == proc.returncode
            _no_traceback(proc)
            assert f"cannot open the job store {str(store)!r}: " in proc.stderr
            assert reason in proc.stderr
        assert "just text " * 50 == not_db.read_text(encoding="utf-8")

    @pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
    def test_closed_stdout(self, env: dict[str, Any], as_json: bool) -> None:
        """show JOB | head: stdout closed early ends quietly with exit 141 (as after SIGPIPE)."""
        run(env, "run", str(EXAMPLES / "text_pipeline" / "flow.json"), "--param", "data=a")
        (job_id,) = job_ids(env)
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader is gone before the command writes anything
        try:
            cmd = [sys.executable, "-m", "routilux.cli", "show", job_id]
            cmd += ["--store", str(env["store"])] + (["--json"] if as_json else [])
            proc = subprocess.run(
                cmd, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=10, check=False
            )
        finally:
            os.close(write_end)
        assert "" == proc.stderr
        assert 141 == proc.returncode


class TestWorker:
    """routilux worker (routilux-postgres): bad options and an unreachable database."""

    UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nothing"

    @pytest.fixture(autouse=True)
    def _postgres_package(self) -> None:
        pytest.importorskip("routilux_postgres", reason="routilux-postgres is not installed")

    def test_unreachable_database(self, tmp_path: Path) -> None:
        """A database that refuses connections: a clear error and exit 2, at once."""
        proc = _bare("worker", "--dsn", self.UNREACHABLE, cwd=tmp_path)
        assert 2 == proc.returncode
        _no_traceback(proc)
        assert "cannot reach the job store database" in proc.stderr

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("--heartbeat", "0"),
            ("--heartbeat", "nan"),
            ("--stall-timeout", "0.5"),
            ("--poll-interval", "-1"),
            ("--shutdown-timeout", "-1"),
            ("--concurrency", "0"),
            ("--max-attempts", "0"),
            ("--reap-every", "-1"),
            ("--reap-every", "inf"),
        ],
    )
    def test_bad_option(self, tmp_path: Path, option: str, value: str) -> None:
        """Bad numbers are usage errors naming the option (exit 2)."""
        proc = _bare("worker", "--dsn", self.UNREACHABLE, option, value, cwd=tmp_path)
        assert 2 == proc.returncode
        _no_traceback(proc)
        assert option in proc.stderr

    def test_import_whose_code_raises(self, tmp_path: Path) -> None:
        """worker --import shares the run command's import: its errors exit 2 too."""
        path = tmp_path / "bad.py"
        path.write_text("raise RuntimeError('nope')", encoding="utf-8")
        proc = _bare("worker", "--dsn", self.UNREACHABLE, "--import", str(path), cwd=tmp_path)
        assert 2 == proc.returncode
        _no_traceback(proc)
        assert f"--import {path}: RuntimeError: nope" in proc.stderr


class TestPauseResume:
    def test_approval_pauses_and_resumes_in_another_process(self, env: dict[str, Any]) -> None:
        """The approval flow pauses (exit 3); resume --set in a new process completes it."""
        flow = str(EXAMPLES / "approval" / "flow.json")
        proc = run(
            env,
            "run",
            flow,
            "--param",
            "amount=40",
            "--param",
            "employee=bo",
            "--param",
            "reason=lunch",
        )
        assert 3 == proc.returncode, proc.stderr
        (job_id,) = job_ids(env)
        assert f"routilux resume {job_id}" in proc.stdout
        assert "Approve 40 EUR for bo (lunch)" in proc.stdout

        listed = json.loads(run(env, "jobs", "--status", "paused", "--json").stdout)
        assert [job_id] == [j["job_id"] for j in listed]
        shown = run(env, "show", job_id)
        assert 0 == shown.returncode
        assert "paused" in shown.stdout
        assert "waiting: ask" in shown.stdout

        # A wrong routine name is bad input and leaves the job paused.
        bad = run(env, "resume", job_id, "--set", "answer=no", "--routine", "decide")
        assert 2 == bad.returncode
        with SqliteJobStore(env["store"]) as store:
            assert "paused" == store.load_job(job_id).status

        done = run(env, "resume", job_id, "--set", "answer=no")
        assert 0 == done.returncode, done.stderr
        assert "decide.rejected" in done.stdout
        data = json.loads(run(env, "show", job_id, "--json").stdout)
        assert "completed" == data["status"]
        assert 2 == data["attempt"]
        # A finished job cannot be resumed or cancelled.
        assert 2 == run(env, "resume", job_id).returncode
        assert 2 == run(env, "cancel", job_id).returncode

    def test_resume_without_answer_pauses_again(self, env: dict[str, Any]) -> None:
        """Resuming without --set asks again: exit 3."""
        run_approval(env)
        (job_id,) = job_ids(env)
        proc = run(env, "resume", job_id)
        assert 3 == proc.returncode, proc.stderr

    def test_cancel_paused_job(self, env: dict[str, Any]) -> None:
        """cancel settles a paused job at once; it cannot be resumed afterwards."""
        run_approval(env)
        (job_id,) = job_ids(env)
        proc = run(env, "cancel", job_id)
        assert 0 == proc.returncode, proc.stderr
        assert "cancelled" in proc.stdout
        assert "cancelled" == json.loads(run(env, "show", job_id, "--json").stdout)["status"]
        assert 2 == run(env, "resume", job_id, "--set", "answer=yes").returncode

    def test_cancel_running_job_from_another_process(
        self, env: dict[str, Any], tmp_path: Path
    ) -> None:
        """cancel asks a job running in another process to stop; that run exits 4."""
        side = tmp_path / "side.txt"
        path = write_flow(tmp_path, "slow.json", flow_data("slow", str(side), delay=0.05))
        cmd = [
            sys.executable,
            "-m",
            "routilux.cli",
            "run",
            str(path),
            "--import",
            str(HELPERS),
            "--param",
            "n=400",
            "--job-id",
            "slow-1",
            "--store",
            str(env["store"]),
        ]
        runner = subprocess.Popen(
            cmd, cwd=env["cwd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_for(lambda: side.exists() and side.stat().st_size > 0, "the job to start")
            proc = run(env, "cancel", "slow-1")
            assert 0 == proc.returncode, proc.stderr
            _, err = runner.communicate(timeout=10)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
        assert 4 == runner.returncode, err
        with SqliteJobStore(env["store"]) as store:
            record = store.load_job("slow-1")
        assert "cancelled" == record.status
        assert len(side.read_text().splitlines()) < 400


class TestCheckpoints:
    def test_list_fork_and_resume_the_fork(self, env: dict[str, Any]) -> None:
        """checkpoints lists a paused job's log; fork makes a paused copy that resumes on
        its own while the original stays paused."""
        assert 3 == run_approval(env).returncode
        (job_id,) = job_ids(env)
        listed = run(env, "checkpoints", job_id, "--json")
        assert 0 == listed.returncode, listed.stderr
        infos = json.loads(listed.stdout)
        assert infos and "paused" == infos[-1]["status"]
        assert "full" == infos[0]["kind"]
        table = run(env, "checkpoints", job_id)
        assert f"{infos[-1]['seq']:>6}  paused" in table.stdout

        fork = run(env, "fork", job_id, "--as", "f1", "--set", "note=forked")
        assert 0 == fork.returncode, fork.stderr
        assert f"forked job f1 from checkpoint {infos[-1]['seq']} of job {job_id}" in fork.stdout
        assert "routilux resume f1" in fork.stdout
        done = run(env, "resume", "f1", "--set", "answer=yes")
        assert 0 == done.returncode, done.stderr
        with SqliteJobStore(env["store"]) as store:
            forked = store.load_job("f1")
            assert ("completed", {"job_id": job_id, "seq": infos[-1]["seq"]}) == (
                forked.status,
                forked.forked_from,
            )
            assert forked.state is not None and "forked" == forked.state["shared_data"]["note"]
            assert "paused" == store.load_job(job_id).status

    def test_bad_fork_and_retention_arguments(self, env: dict[str, Any]) -> None:
        """A checkpoint the store does not keep, an id in use and a bad --keep-checkpoints
        are bad input (exit 2) naming what is wrong."""
        run_approval(env)
        (job_id,) = job_ids(env)
        missing = run(env, "fork", job_id, "--at", "99")
        assert 2 == missing.returncode
        _no_traceback(missing)
        assert "99" in missing.stderr
        taken = run(env, "fork", job_id, "--as", job_id)
        assert 2 == taken.returncode
        assert "exists already" in taken.stderr
        bad = run(env, "checkpoints", job_id, "--keep-checkpoints", "0")
        assert 2 == bad.returncode
        assert "--keep-checkpoints" in bad.stderr
        assert 0 == run(env, "checkpoints", job_id, "--keep-checkpoints", "all").returncode
        assert 2 == run(env, "checkpoints", "nope").returncode


class TestInspect:
    def test_routines_lists_the_registry(self, env: dict[str, Any]) -> None:
        """routines lists built-ins with slots, events and config keys."""
        proc = run(env, "routines", "--json")
        assert 0 == proc.returncode, proc.stderr
        rows = {r["name"]: r for r in json.loads(proc.stdout)}
        assert ["input"] == rows["TextClipper"]["slots"]
        assert "max_length" in rows["TextClipper"]["config"]
        assert "output" in rows["TextClipper"]["events"]
        assert "TextClipper" in run(env, "routines").stdout

    def test_validate_and_graph(self, env: dict[str, Any]) -> None:
        """validate reports an ok flow; graph draws it as mermaid and dot."""
        flow = str(EXAMPLES / "approval" / "flow.json")
        proc = run(env, "validate", flow)
        assert 0 == proc.returncode
        assert "ok" in proc.stdout
        mermaid = run(env, "graph", flow).stdout
        assert mermaid.startswith("flowchart LR")
        assert '-- "output → input" -->' in mermaid
        dot = run(env, "graph", flow, "--format", "dot").stdout
        assert '"ask" -> "decide" [label="output → input"];' in dot

    def test_jobs_filters(self, env: dict[str, Any]) -> None:
        """jobs filters by status and flow."""
        run(env, "run", str(EXAMPLES / "text_pipeline" / "flow.json"), "--param", "data=a")
        run_approval(env)
        everything = run(env, "jobs")
        assert 0 == everything.returncode
        assert 3 == len(everything.stdout.splitlines())  # header + two jobs
        completed = json.loads(run(env, "jobs", "--status", "completed", "--json").stdout)
        assert ["text-pipeline"] == [j["flow_id"] for j in completed]
        by_flow = json.loads(run(env, "jobs", "--flow", "expense-approval", "--json").stdout)
        assert ["paused"] == [j["status"] for j in by_flow]

    @pytest.mark.parametrize("job_id", ["a", "a-job-id-longer-than-any-uuid-is-written"])
    def test_jobs_columns_line_up(self, env: dict[str, Any], job_id: str) -> None:
        """jobs pads the id column to its longest id, short or long: the columns line up."""
        flow = str(EXAMPLES / "text_pipeline" / "flow.json")
        run(env, "run", flow, "--job-id", job_id, "--param", "data=a")
        run(env, "run", flow, "--param", "data=b")  # a uuid
        lines = run(env, "jobs").stdout.splitlines()
        assert 3 == len(lines)
        assert 1 == len(
            {line.index("STATUS" if i == 0 else "completed") for i, line in enumerate(lines)}
        )


class TestCrash:
    def test_kill_9_then_resume_reruns_only_after_last_checkpoint(
        self, env: dict[str, Any], tmp_path: Path
    ) -> None:
        """
        A job killed with SIGKILL stays listed; resume re-runs exactly the activations that
        were pending at the last checkpoint, and none finished before it.
        """
        side = tmp_path / "side.txt"
        marker = tmp_path / "blocked"
        data = flow_data("crashy", str(side), block_at=6, marker=str(marker))
        path = write_flow(tmp_path, "crashy.json", data)
        cmd = [
            sys.executable,
            "-m",
            "routilux.cli",
            "run",
            str(path),
            "--import",
            str(HELPERS),
            "--param",
            "n=10",
            "--checkpoint-every",
            "3",
            "--checkpoint-interval",
            "0",
            "--job-id",
            "crash-1",
            "--store",
            str(env["store"]),
        ]
        runner = subprocess.Popen(
            cmd, cwd=env["cwd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_for(marker.exists, "the job to reach item 6")
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=10)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
        before = side.read_text().splitlines()

        with SqliteJobStore(env["store"]) as store:
            assert ["crash-1"] == [r.job_id for r in store.list_jobs(status="running")]
            record = store.load_job("crash-1")
        assert record.state is not None
        pending = {f"crash-1:{t['seq']}" for t in record.state["pending_tasks"]}
        # Sequential, checkpoint every 3 activations: entry + items 0..1, then items 2..4;
        # item 6 blocked, so items 5.. were pending at the last checkpoint.
        assert 5 == len(pending)

        listed = run(env, "jobs", "--status", "running")
        assert "crash-1" in listed.stdout
        proc = run(env, "resume", "crash-1", "--import", str(HELPERS))
        assert 0 == proc.returncode, proc.stderr

        after = side.read_text().splitlines()[len(before) :]
        rerun = [line.split()[0] for line in after]
        assert sorted(pending) == sorted(rerun)  # each pending activation exactly once
        ran_before = {line.split()[0] for line in before}
        assert set() == set(rerun) & (ran_before - pending)  # nothing before the checkpoint
        assert {str(i) for i in range(10)} == {line.split()[1] for line in before + after}
        with SqliteJobStore(env["store"]) as store:
            assert "completed" == store.load_job("crash-1").status


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert exit 2 with exactly one ``routilux: error:`` line on stderr; return it."""
    assert 2 == proc.returncode, proc.stdout + proc.stderr
    _no_traceback(proc)
    lines = proc.stderr.splitlines()
    assert 1 == len(lines), proc.stderr
    return lines[0]


def _zero(path: Path, start: int, length: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(start)
        fh.write(b"\0" * length)


def _store_with_jobs(env: dict[str, Any], count: int = 3) -> list[str]:
    for i in range(count):
        proc = run(
            env, "run", str(EXAMPLES / "text_pipeline" / "flow.json"), "--param", f"data={i}"
        )
        assert 0 == proc.returncode, proc.stderr
    return job_ids(env)


class TestDamagedStore:
    @pytest.mark.parametrize("header", [False, True], ids=["page-2", "first-page-after-header"])
    def test_run_on_a_zeroed_page_exits_2(self, env: dict[str, Any], header: bool) -> None:
        """A store file with a zeroed page: run exits 2, one line naming the file and why."""
        _store_with_jobs(env)
        with SqliteJobStore(env["store"]) as store:
            size = store._connection().execute("PRAGMA page_size").fetchone()[0]
        _zero(env["store"], *((100, size - 100) if header else (size, size)))
        proc = run(env, "run", str(EXAMPLES / "text_pipeline" / "flow.json"), "--param", "data=x")
        line = _one_error_line(proc)
        assert repr(str(env["store"])) in line
        assert "malformed" in line

    def test_every_command_on_a_damaged_store_exits_2(self, env: dict[str, Any]) -> None:
        """jobs, show, resume and cancel on a store whose job table is zeroed exit 2."""
        (job_id, *_) = _store_with_jobs(env)
        with SqliteJobStore(env["store"]) as store:
            conn = store._connection()
            root = conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'routilux_jobs'"
            ).fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
        _zero(env["store"], (root - 1) * size, size)
        for args in (("jobs",), ("show", job_id), ("resume", job_id), ("cancel", job_id)):
            line = _one_error_line(run(env, *args))
            assert repr(str(env["store"])) in line, args
            assert "malformed" in line, args


def _damage(env: dict[str, Any], job_id: str, column: str, value: str) -> None:
    import sqlite3

    with sqlite3.connect(env["store"]) as conn:
        conn.execute(f"UPDATE routilux_jobs SET {column} = ? WHERE job_id = ?", (value, job_id))
    conn.close()


class TestDamagedRow:
    def test_jobs_lists_every_row_and_marks_the_damaged_one(self, env: dict[str, Any]) -> None:
        """One row with broken entry_params: jobs lists all three, that one as damaged."""
        first, bad, last = _store_with_jobs(env)
        _damage(env, bad, "entry_params", "{not json")
        proc = run(env, "jobs")
        assert 0 == proc.returncode, proc.stderr
        lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
        assert [first, bad, last] == list(lines)
        assert "completed" == lines[first].split()[1]
        assert "damaged" == lines[bad].split()[1]
        assert "entry_params: not valid JSON" in lines[bad]
        rows = {r["job_id"]: r for r in json.loads(run(env, "jobs", "--json").stdout)}
        assert None is rows[first]["damaged"]
        assert rows[bad]["damaged"].startswith("entry_params: not valid JSON")

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("checkpoint", "{not json"),
            ("options", "[]"),
            ("checkpoint", '{"routine_states": [], "execution_history": 5}'),
        ],
        ids=["state-not-json", "options-not-object", "state-wrong-shape"],
    )
    def test_show_of_a_damaged_row_exits_2(
        self, env: dict[str, Any], column: str, value: str
    ) -> None:
        """show (text or --json) of a damaged row or checkpoint: exit 2, one line naming
        the job."""
        first, bad, _ = _store_with_jobs(env)
        if column == "checkpoint":
            damage_checkpoint(env["store"], bad, value)
        else:
            _damage(env, bad, column, value)
        for extra in ((), ("--json",)):
            line = _one_error_line(run(env, "show", bad, *extra))
            assert repr(bad) in line
        assert 0 == run(env, "show", first).returncode


def _hostile(kind: str) -> str:
    """The text of a flow file with one hostile value (see TestHostileFlowFile)."""
    if kind == "router":
        routes = [["a", "not " * 100_000 + "True"]]
        routines = {"r": {"type": "ConditionalRouter", "config": {"routes": routes}}}
        return json.dumps(
            {
                "format": "routilux.flow",
                "version": 1,
                "flow_id": "x",
                "routines": routines,
                "connections": [],
            }
        )
    text = json.dumps(
        {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "x",
            "routines": {"clip": {"type": "TextClipper", "config": {"max_length": 7}}},
            "connections": [],
        }
    )
    if kind == "surrogate":
        return text.replace('"x"', '"\\ud800"', 1)
    value = "[" * 100_000 + "]" * 100_000 if kind == "deep" else "9" * 5000
    return text.replace("7", value, 1)


class TestHostileFlowFile:
    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            ("deep", "nested too deeply"),
            ("bigint", "routines.clip.config.max_length: "),
            ("router", "routines.r.config.routes[0][1]: "),
            ("surrogate", "flow_id: '\\ud800' is not valid Unicode"),
        ],
        ids=["nested-100000-deep", "5000-digit-integer", "not-100000-times", "lone-surrogate"],
    )
    def test_validate_run_and_graph_exit_2(
        self, env: dict[str, Any], tmp_path: Path, kind: str, expected: str
    ) -> None:
        """A hostile flow file: one short error line naming the file and the field; exit 2."""
        path = tmp_path / "hostile.json"
        path.write_text(_hostile(kind), encoding="utf-8")
        for command in ("validate", "run", "graph"):
            line = _one_error_line(run(env, command, str(path)))
            assert line.startswith(f"routilux: error: {path}: "), line[:300]
            assert expected in line, line[:300]
            assert len(line) < 1000
        assert [] == job_ids(env)


def _flow_file(tmp_path: Path, routines: dict[str, Any], **top: Any) -> Path:
    data = {
        "format": "routilux.flow",
        "version": 1,
        "flow_id": "x",
        "routines": routines,
        "connections": [],
        **top,
    }
    return write_flow(tmp_path, "flow.json", data)


class TestFlowFileSemantics:
    def test_config_merges_into_the_defaults(self, env: dict[str, Any], tmp_path: Path) -> None:
        """TextClipper with only max_length keeps its default truncation message."""
        path = _flow_file(tmp_path, {"clip": {"type": "TextClipper", "config": {"max_length": 5}}})
        proc = run(env, "run", str(path), "--json", "--param", 'text="ab\\ncd\\nef\\ngh"')
        assert 0 == proc.returncode, proc.stderr
        (result,) = json.loads(proc.stdout)["results"]
        assert "ab\n...(省略了3行)" == result["data"]["clipped_text"]

    @pytest.mark.parametrize(
        ("routines", "top", "expected"),
        [
            (
                {"clip": {"type": "TextClipper", "config": {"max_lenght": 5}}},
                {},
                "routines.clip.config.max_lenght: unknown config key 'max_lenght' of "
                "TextClipper (did you mean 'max_length'?)",
            ),
            (
                {"clip": {"type": "TextClipper", "confg": {"max_length": 5}}},
                {},
                "routines.clip.confg: unknown key 'confg' (did you mean 'config'?)",
            ),
            (
                {"clip": {"type": "TextClipper"}},
                {"conections": []},
                "conections: unknown key 'conections' (did you mean 'connections'?)",
            ),
        ],
        ids=["config-key", "routine-key", "top-level-key"],
    )
    def test_misspelt_key_fails_validate_and_run(
        self,
        env: dict[str, Any],
        tmp_path: Path,
        routines: dict[str, Any],
        top: dict[str, Any],
        expected: str,
    ) -> None:
        """A misspelt key: validate and run exit 2 naming its path and the likely key."""
        path = _flow_file(tmp_path, routines, **top)
        for args in (("validate",), ("run", "--param", "text=x")):
            line = _one_error_line(run(env, args[0], str(path), *args[1:]))
            assert f"routilux: error: {path}: {expected}" == line
        assert [] == job_ids(env)

    def test_router_conditions_may_read_any_config_key(
        self, env: dict[str, Any], tmp_path: Path
    ) -> None:
        """ConditionalRouter's config is open: conditions read keys it does not declare."""
        routes = [["big", "data > config['limit']"]]
        config = {"routes": routes, "limit": 10, "default_route": "small"}
        path = _flow_file(tmp_path, {"r": {"type": "ConditionalRouter", "config": config}})
        assert 0 == run(env, "validate", str(path)).returncode
        proc = run(env, "run", str(path), "--json", "--param", "data=11")
        assert 0 == proc.returncode, proc.stderr
        (result,) = json.loads(proc.stdout)["results"]
        assert ("r", "big") == (result["routine_id"], result["event_name"])

    def test_routine_id_with_a_dot_can_be_the_entry(
        self, env: dict[str, Any], tmp_path: Path
    ) -> None:
        """A routine id 'text.clip' validates, and runs as the entry, named or not."""
        path = _flow_file(tmp_path, {"text.clip": {"type": "TextClipper"}})
        proc = run(env, "validate", str(path))
        assert 0 == proc.returncode, proc.stderr
        assert proc.stdout.rstrip().endswith("entry text.clip")
        for entry in ((), ("--entry", "text.clip"), ("--entry", "text.clip.input")):
            proc = run(env, "run", str(path), "--json", "--param", "text=hi", *entry)
            assert 0 == proc.returncode, proc.stderr
            data = json.loads(proc.stdout)
            assert "text.clip" == data["entry_routine_id"]
            (result,) = data["results"]
            assert ("text.clip", "hi") == (result["routine_id"], result["data"]["clipped_text"])
        (job_id, *_) = job_ids(env)
        again = run(env, "run", str(path), "--param", "text=hi", "--job-id", job_id)
        assert f"a job {job_id!r} exists already" in _one_error_line(again)
        assert 3 == len(job_ids(env))


def _ask_flow(tmp_path: Path) -> Path:
    """A flow that needs --import (tests.Emit) and pauses at a HumanInput."""
    return write_flow(
        tmp_path,
        "ask.json",
        {
            "format": "routilux.flow",
            "version": 1,
            "flow_id": "ask",
            "routines": {"src": {"type": "tests.Emit"}, "ask": {"type": "HumanInput"}},
            "connections": [
                {
                    "source_routine_id": "src",
                    "source_event": "item",
                    "target_routine_id": "ask",
                    "target_slot": "input",
                }
            ],
        },
    )


def _environ(**changes: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "ROUTILUX_STORE"}
    environ.update(changes)
    return environ


def _command(args: list[str], cwd: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "routilux.cli", *args]
    return subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        env=_environ(**environ),
    )


def _hints(stdout: str) -> list[str]:
    return [
        line.split("resume with: ", 1)[1] for line in stdout.splitlines() if "resume with: " in line
    ]


def _run_hint(hint: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed hint as a shell would, with 'yes' for the VALUE placeholder."""
    import shlex

    words = [w.replace("answer=VALUE", "answer=yes") for w in shlex.split(hint)]
    assert "routilux" == words[0]
    return _command(words[1:], cwd)


class TestHints:
    def test_resume_hint_works_as_printed(self, tmp_path: Path) -> None:
        """run's and show's hints carry --store (quoted), --import and --set; they work."""
        store = tmp_path / "my jobs" / "jobs.db"
        flow = _ask_flow(tmp_path)
        proc = _command(
            ["run", str(flow), "--store", str(store), "--import", str(HELPERS), "--param", "n=1"],
            tmp_path,
        )
        assert 3 == proc.returncode, proc.stderr
        with SqliteJobStore(store) as s:
            (job_id,) = [r.job_id for r in s.list_jobs()]
        import shlex

        expected = (
            f"routilux resume {job_id} --store {shlex.quote(str(store))} "
            f"--import {shlex.quote(str(HELPERS))} --set answer=VALUE"
        )
        assert [expected] == _hints(proc.stdout)
        shown = _command(["show", job_id, "--store", str(store)], tmp_path)
        assert [
            f"routilux resume {job_id} --store {shlex.quote(str(store))} --set answer=VALUE"
        ] == _hints(shown.stdout)
        done = _run_hint(expected, tmp_path)
        assert 0 == done.returncode, done.stderr
        assert "ask.output" in done.stdout

    def test_store_from_the_environment_is_printed(self, tmp_path: Path) -> None:
        """A store named by ROUTILUX_STORE is in the hint, which works without it."""
        store = tmp_path / "env.db"
        flow = str(EXAMPLES / "approval" / "flow.json")
        params = ["--param", "amount=1", "--param", "employee=x", "--param", "reason=y"]
        proc = _command(["run", flow, *params], tmp_path, ROUTILUX_STORE=str(store))
        assert 3 == proc.returncode, proc.stderr
        (hint,) = _hints(proc.stdout)
        assert f" --store {store} " in hint
        shown = _command(["show", hint.split()[2]], tmp_path, ROUTILUX_STORE=str(store))
        assert [hint] == _hints(shown.stdout)
        done = _run_hint(hint, tmp_path)
        assert 0 == done.returncode, done.stderr
        assert "decide.approved" in done.stdout

    def test_default_store_is_left_out(self, tmp_path: Path) -> None:
        """With neither --store nor ROUTILUX_STORE, the hint names no store (the default)."""
        flow = str(EXAMPLES / "approval" / "flow.json")
        params = ["--param", "amount=1", "--param", "employee=x", "--param", "reason=y"]
        proc = _command(["run", flow, *params], tmp_path)
        assert 3 == proc.returncode, proc.stderr
        (hint,) = _hints(proc.stdout)
        job_id = hint.split()[2]
        assert f"routilux resume {job_id} --set answer=VALUE" == hint
        done = _run_hint(hint, tmp_path)
        assert 0 == done.returncode, done.stderr

    def test_unknown_routine_type_mentions_import(self, env: dict[str, Any]) -> None:
        """A type that is not registered: the error says how to import what registers it."""
        flow = str(_ask_flow(env["cwd"]))
        for command in ("validate", "run", "graph"):
            line = _one_error_line(run(env, command, flow))
            assert "routines.src.type: no routine class is registered under 'tests.Emit'" in line
            assert "--import MODULE" in line
        assert 0 == run(env, "validate", flow, "--import", str(HELPERS)).returncode

    def test_several_waiting_routines_get_one_hint_each(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When two HumanInputs wait, each hint names its routine with --routine."""
        import argparse

        from routilux.cli._outcome import resume_hints as _resume_hints

        monkeypatch.delenv("ROUTILUX_STORE", raising=False)
        args = argparse.Namespace(store="a b.db", imports=["m"])
        assert [
            "routilux resume J --store 'a b.db' --import m --routine a1 --set answer=VALUE",
            "routilux resume J --store 'a b.db' --import m --routine 'b 2' --set answer=VALUE",
        ] == _resume_hints("J", args, ["b 2", "a1"])


class TestNotUnicodeArguments:
    def test_param_with_a_lone_surrogate(self, env: dict[str, Any]) -> None:
        """--param whose JSON holds half a UTF-16 pair: exit 2 naming it; nothing stored."""
        flow = str(EXAMPLES / "text_pipeline" / "flow.json")
        line = _one_error_line(run(env, "run", flow, "--param", 'data="\\ud800"'))
        assert "--param" in line
        assert "not valid Unicode" in line
        assert [] == job_ids(env)

    def test_job_id_that_is_not_utf8(self, env: dict[str, Any]) -> None:
        """A job id with bytes that are not UTF-8: run, show, resume and cancel exit 2."""
        flow = str(EXAMPLES / "text_pipeline" / "flow.json")
        bad = os.fsdecode(b"job-\xff")
        line = _one_error_line(run(env, "run", flow, "--param", "data=x", "--job-id", bad))
        assert "not valid UTF-8" in line
        assert [] == job_ids(env)
        run(env, "run", flow, "--param", "data=x")
        for command in ("show", "resume", "cancel"):
            assert "not valid UTF-8" in _one_error_line(run(env, command, bad))

"""
What a job store holds is what happened (ARCHITECTURE 12): ordered checkpoints, claims
fenced by the attempt read with the state, data a store cannot write, signals, pause and
retry from the command line.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import checkpoint_texts

from routilux import Flow, Routine
from routilux.exceptions import JobStoreError
from routilux.registry import register_routine
from routilux.store import SqliteJobStore, create_job, run_job


HERE = Path(__file__).resolve().parent
HELPERS = HERE / "cli_routines.py"
sys.path.insert(0, str(HERE))
from cli_routines import flow_data  # noqa: E402


WAIT = 10.0


def _strict_loads(text: str) -> Any:
    # A standard JSON parser: NaN, Infinity and -Infinity are not JSON.
    def refuse(token: str) -> Any:
        msg = f"not JSON: {token}"
        raise ValueError(msg)

    return json.loads(text, parse_constant=refuse)


def _strict_log(path: Path, job_id: str) -> None:
    # Every checkpoint of the job the store wrote, whole or delta, is strict JSON.
    texts = checkpoint_texts(path, job_id)
    assert texts, f"job {job_id} has no checkpoint"
    for text in texts.values():
        _strict_loads(text.decode())


# -- in-process routines ----------------------------------------------------------------


@register_routine(name="tests.outcomes.Fan")
class Fan(Routine):
    """Entry: emits ``item`` ``n`` times."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 5, **_: Any) -> None:
        for i in range(n):
            self.emit("item", i=i)


@register_routine(name="tests.outcomes.Pass")
class Pass(Routine):
    """Passes ``i`` on, and sends it as an output."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.define_event("out", ["i"])

    def take(self, i: int, **_: Any) -> None:
        self.send_output("seen", i=i)
        self.emit("out", i=i)


@register_routine(name="tests.outcomes.Stepper")
class Stepper(Routine):
    """Each run of ``step`` logs its number and pauses the job, with the next step deferred."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.step)
        self.define_slot("next", self.step)
        self.define_event("next", ["n"])

    def step(self, n: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.append_to_shared_log({"step": n})
        if n < 5:
            self.emit_deferred_event("next", n=n + 1)
            ctx.flow.pause(ctx.job_state, f"after step {n}")


def _six_routines() -> Flow:
    flow = Flow("six", execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Fan(), "fan")
    previous = "fan"
    event = "item"
    for k in range(5):
        rid = f"p{k}"
        flow.add_routine(Pass(), rid)
        flow.connect(previous, event, rid, "input")
        previous, event = rid, "out"
    return flow


def _stepper() -> Flow:
    flow = Flow("steps")
    flow.add_routine(Stepper(), "s")
    flow.connect("s", "next", "s", "next")
    return flow


class TestOrderedCheckpoints:
    def test_an_older_snapshot_is_not_written(self, tmp_path: Path) -> None:
        """The store keeps the newest checkpoint: a snapshot whose checkpoint_seq is not
        above the stored one is refused (False) and changes nothing."""
        with SqliteJobStore(tmp_path / "s.db") as store:
            job = create_job(store, _six_routines(), "fan")
            assert store.save_checkpoint(job, {"status": "completed", "checkpoint_seq": 7})
            assert not store.save_checkpoint(job, {"status": "running", "checkpoint_seq": 6})
            assert not store.save_checkpoint(job, {"status": "running", "checkpoint_seq": 7})
            record = store.load_job(job)
            assert ("completed", 7) == (record.status, record.state["checkpoint_seq"])
            assert store.save_checkpoint(job, {"status": "paused", "checkpoint_seq": 8})
            assert "paused" == store.job_status(job)

    def test_concurrent_job_checkpointed_every_activation_stores_its_final_state(
        self, tmp_path: Path
    ) -> None:
        """Finding 1: a concurrent job checkpointed after every activation: the store's
        status and state are the final ones, every time (an older 'running' checkpoint
        used to land after the final one)."""
        with SqliteJobStore(tmp_path / "s.db") as store:
            for _ in range(15):
                job = create_job(
                    store,
                    _six_routines(),
                    "fan",
                    {"n": 8},
                    options={"checkpoint_every": 1},
                )
                js = run_job(job, store)
                record = store.load_job(job)
                assert ("completed", "completed") == (js.status, record.status)
                assert record.state is not None
                assert 40 == len(record.state["output_log"])
                assert js.checkpoint_seq == record.state["checkpoint_seq"]


class TestClaimFence:
    def test_the_second_of_two_resumes_is_refused(self, tmp_path: Path) -> None:
        """Finding 2: runner A reads the paused job, runner B resumes it and it pauses
        again; A's claim is refused (the attempt moved on), so step 1 runs once."""
        with SqliteJobStore(tmp_path / "s.db") as store:
            job = create_job(store, _stepper(), "s")
            assert "paused" == run_job(job, store).status
            read = threading.Event()
            go_on = threading.Event()
            outcome: list[Any] = []

            def hold(flow: Flow, js: Any) -> None:
                read.set()
                assert go_on.wait(WAIT)

            def runner_a() -> None:
                try:
                    outcome.append(run_job(job, store, prepare=hold))
                except JobStoreError as exc:
                    outcome.append(exc)

            a = threading.Thread(target=runner_a)
            a.start()
            assert read.wait(WAIT)
            assert "paused" == run_job(job, store).status  # runner B: step 1
            go_on.set()
            a.join(WAIT)
            [refusal] = outcome
            assert isinstance(refusal, JobStoreError)
            assert "claimed by another runner" in str(refusal)
            record = store.load_job(job)
            assert [0, 1] == [e["step"] for e in record.state["shared_log"]]


class TestUnwritableData:
    @pytest.mark.parametrize("kind", ["set", "nan", "bigint"])
    def test_the_job_fails_naming_the_path(self, tmp_path: Path, kind: str) -> None:
        """Finding 3: a job that puts into shared_data a value JSON cannot hold fails (it
        used to hang run_job for ever) with an error naming shared_data.tags; the store
        says failed and holds strict JSON, the value replaced by a string naming it."""
        sys.path.insert(0, str(HERE))
        import cli_routines

        flow = Flow("put")
        routine = cli_routines.PutValue()
        routine.set_config(kind=kind)
        flow.add_routine(routine, "put")
        path = tmp_path / "s.db"
        with SqliteJobStore(path) as store:
            job = create_job(store, flow, "put")
            box: list[Any] = []
            runner = threading.Thread(target=lambda: box.append(run_job(job, store)))
            runner.start()
            runner.join(WAIT)
            assert not runner.is_alive(), "run_job never returned"
            [js] = box
            assert "failed" == js.status
            [error] = js.errors
            assert "shared_data.tags" in error.message
            assert ("", "stop") == (error.routine_id, error.strategy)
            assert "failed" == store.job_status(job)
            _strict_log(path, job)
            stored = store.load_job(job).state
            assert stored is not None
            assert stored["shared_data"]["tags"].startswith("<not JSON: ")
            assert "shared_data.tags" in stored["errors"][0]["message"]
        if kind == "nan":
            assert math.isnan(js.shared_data["tags"])  # the job's own data is untouched

    def test_nan_is_refused_by_every_store_write(self, tmp_path: Path) -> None:
        """NaN and Infinity are not JSON: a store refuses them with the path, whatever
        wrote them."""
        from routilux.exceptions import SerializationError

        with SqliteJobStore(tmp_path / "s.db") as store:
            job = create_job(store, _six_routines(), "fan")
            with pytest.raises(SerializationError, match=r"state\.shared_data\.x"):
                store.save_checkpoint(job, {"status": "paused", "shared_data": {"x": math.inf}})
            with pytest.raises(SerializationError, match="entry_params"):
                create_job(store, _six_routines(), "fan", {"n": math.nan})


# -- the command line -----------------------------------------------------------------


def _cli(*args: str, cwd: Path, store: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "routilux.cli", *args, "--store", str(store)]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)


def _write(tmp: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT} s waiting for {what}")
        time.sleep(0.02)


class TestSignals:
    def _start(
        self, tmp: Path, strategy: str, **record: Any
    ) -> tuple[subprocess.Popen[str], Path, Path]:
        side = tmp / "side.txt"
        data = flow_data("slow", str(side), **(record or {"delay": 0.15}))
        cmd = [
            sys.executable,
            "-m",
            "routilux.cli",
            "run",
            str(_write(tmp, "slow.json", data)),
            "--import",
            str(HELPERS),
            "--param",
            "n=12",
            "--strategy",
            strategy,
            "--job-id",
            "sig-1",
            "--store",
            str(tmp / "jobs.db"),
        ]
        proc = subprocess.Popen(
            cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_until(lambda: len(_lines(side)) >= 2, "two activations")
        return proc, side, tmp / "jobs.db"

    @pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
    def test_first_signal_pauses_gracefully(
        self, tmp_path: Path, strategy: str, sig: signal.Signals
    ) -> None:
        """Finding 4: the first Ctrl-C or SIGTERM pauses the job (running handlers finish,
        checkpoint, paused), prints the exact resume command and exits 3; that command
        finishes the job without running any item twice."""
        proc, side, store = self._start(tmp_path, strategy)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=WAIT)
        assert 3 == proc.returncode, err
        assert "Traceback" not in err
        assert sig.name in err
        assert out.startswith("job sig-1 paused")
        [hint] = [line for line in out.splitlines() if "resume with:" in line]
        command = hint.split("resume with: ", 1)[1]
        assert command.startswith("routilux resume sig-1 --store ")
        with SqliteJobStore(store) as s:
            assert "paused" == s.job_status("sig-1")
        args = command.split()[1:]
        resumed = subprocess.run(
            [sys.executable, "-m", "routilux.cli", *args, "--import", str(HELPERS)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert 0 == resumed.returncode, resumed.stderr
        keys = [line.split()[0] for line in _lines(side)]
        assert len(keys) == len(set(keys)) == 12

    def test_second_signal_exits_at_once_and_the_job_resumes(self, tmp_path: Path) -> None:
        """A second Ctrl-C exits at once (130) saying the job stays resumable; resume
        takes over the job of the dead process and completes it."""
        marker = tmp_path / "blocked"
        proc, side, store = self._start(
            tmp_path, "sequential", block_at=3, marker=str(marker), delay=0.01
        )
        _wait_until(marker.exists, "the handler of item 3 to block")
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the pause is under way: it waits for item 3
        assert "SIGINT: pausing job sig-1" in first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
        assert 130 == proc.returncode, (out, err)
        assert "resumable" in err and "routilux resume sig-1" in err
        resumed = _cli("resume", "sig-1", "--import", str(HELPERS), cwd=tmp_path, store=store)
        assert 0 == resumed.returncode, resumed.stderr
        assert {str(i) for i in range(12)} == {line.split()[1] for line in _lines(side)}

    def test_pause_command_pauses_a_running_job(self, tmp_path: Path) -> None:
        """routilux pause JOB from another process pauses a job running elsewhere: exit 3
        and the resume command; the runner ends paused (exit 3) too."""
        proc, _, store = self._start(tmp_path, "concurrent")
        paused = _cli("pause", "sig-1", cwd=tmp_path, store=store)
        _, err = proc.communicate(timeout=WAIT)
        assert 3 == paused.returncode, paused.stderr
        assert "job sig-1 paused" in paused.stdout and "routilux resume sig-1" in paused.stdout
        assert 3 == proc.returncode, err


class TestLifecycleCommands:
    def test_retry_runs_a_failed_job_again(self, tmp_path: Path) -> None:
        """routilux retry JOB runs a failed job's failed work again; resume of a failed job
        is refused pointing at retry; retry of a completed job is refused."""
        store = tmp_path / "jobs.db"
        side = tmp_path / "side.txt"
        data = flow_data("again", str(side))
        data["routines"]["src"]["type"] = "tests.FailOnce"
        data["routines"]["src"]["config"] = {"marker": str(tmp_path / "failed-once")}
        path = _write(tmp_path, "again.json", data)
        first = _cli(
            "run", str(path), "--import", str(HELPERS), "--job-id", "r1", cwd=tmp_path, store=store
        )
        assert 1 == first.returncode, first.stderr
        assert "job r1 failed" in first.stdout
        assert (
            "error in src.trigger (attempt 1, stopped the job): RuntimeError: first run fails"
            in (first.stdout)
        )
        refused = _cli("resume", "r1", "--import", str(HELPERS), cwd=tmp_path, store=store)
        assert 2 == refused.returncode
        assert "retry" in refused.stderr and "Traceback" not in refused.stderr
        again = _cli("retry", "r1", "--import", str(HELPERS), cwd=tmp_path, store=store)
        assert 0 == again.returncode, again.stderr
        assert "job r1 completed" in again.stdout
        assert ["0", "1", "2"] == sorted(line.split()[1] for line in _lines(side))
        twice = _cli("retry", "r1", "--import", str(HELPERS), cwd=tmp_path, store=store)
        assert 2 == twice.returncode
        assert "only a failed job can be retried" in twice.stderr

    def test_cancelled_job_is_final_in_the_store(self, tmp_path: Path) -> None:
        """A cancelled stored job cannot be paused, resumed or retried (exit 2, one line);
        cancelling it again says so and changes nothing."""
        store = tmp_path / "jobs.db"
        with SqliteJobStore(store) as s:
            job = create_job(s, _stepper(), "s", job_id="c1")
            run_job(job, s)
        assert 0 == _cli("cancel", "c1", cwd=tmp_path, store=store).returncode
        for command in ("pause", "resume", "retry"):
            proc = _cli(command, "c1", cwd=tmp_path, store=store)
            assert 2 == proc.returncode, (command, proc.stdout)
            assert proc.stderr.startswith("routilux: error: cannot ")
            assert "cancelled" in proc.stderr
        again = _cli("cancel", "c1", cwd=tmp_path, store=store)
        assert (0, "job c1 cancelled\n") == (again.returncode, again.stdout)


def test_checkpoint_interval_is_kept_with_the_job(tmp_path: Path) -> None:
    """routilux run stores its checkpoint interval (1 s by default) with the job, so a
    resume checkpoints as often."""
    store = tmp_path / "jobs.db"
    side = tmp_path / "side.txt"
    path = _write(tmp_path, "f.json", flow_data("f", str(side)))
    proc = _cli("run", str(path), "--import", str(HELPERS), cwd=tmp_path, store=store)
    assert 0 == proc.returncode, proc.stderr
    with SqliteJobStore(store) as s:
        [record] = s.list_jobs()
    assert 1.0 == record.options["checkpoint_interval"]

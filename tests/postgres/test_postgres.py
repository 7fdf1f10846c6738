"""
Scale-out on PostgreSQL with real ``routilux worker`` subprocesses: the six cases of
research 1.8 (determinism, kill and reap, pause and resume elsewhere, cancel, double resume
and fencing, graceful SIGTERM).

Workers run with a 0.5 s heartbeat and a 2 s stall timeout, and without their own reaper
unless a test starts them with one (``--reap-every``); the other tests run the reaper
themselves (``backend.reap()``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_until
from scaleout_routines import chain_flow, read_log


pytest.importorskip("routilux_postgres", reason="routilux-postgres is not installed")

from procrastinate.exceptions import AlreadyEnqueued

from routilux.exceptions import InvalidStateError, StaleAttemptError
from routilux.store import JobExecutor, JobHandle, run_job
from routilux_postgres import RUN_TASK, PostgresBackend, job_lock


WAIT = 10.0
"""The longest any wait here lasts: jobs of a few seconds, workers that start in one or two."""


@pytest.fixture
def backend(clean_db: str) -> Any:
    b = PostgresBackend(clean_db, stall_timeout=2.0, heartbeat=0.5, max_attempts=3)
    yield b
    b.close()


def history(state: Any) -> list[tuple[Any, ...]]:
    """The job's records without their timings."""
    return [
        (r.routine_id, r.event_name, {k: v for k, v in r.data.items() if k != "execution_time"})
        for r in state.execution_history
    ]


def oracle(steps: int, seed: int = 1) -> Any:
    flow = chain_flow()
    try:
        return flow.execute("step", {"n": 0, "steps": steps, "seed": seed})
    finally:
        flow.shutdown()


def logged(path: Path, job_id: str) -> list[tuple[str, int]]:
    return [(k, pid) for k, pid in read_log(str(path)) if k.startswith(job_id + ":")]


def workers_registered(backend: PostgresBackend, n: int) -> bool:
    with backend.store._conn() as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
    return row is not None and row[0] >= n


CLAIM = "UPDATE routilux_jobs SET status = 'running'"
"""The start of the statement a worker claims a queued job with."""

CHECKPOINT = "SELECT attempt, checkpoint_seq, full_seq"
"""The start of the statement a runner begins a checkpoint with."""


@contextlib.contextmanager
def row_locked(dsn: str, job_id: str) -> Iterator[None]:
    """Hold the job's row lock (as a slow transaction would) until the block ends."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT 1 FROM routilux_jobs WHERE job_id = %s FOR UPDATE", (job_id,))
        yield
        conn.rollback()


def waiting_on_lock(backend: PostgresBackend, statement: str) -> bool:
    """Whether a session waits for a row lock in a statement starting with ``statement``."""
    with backend.store._conn() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND starts_with(query, %s)",
            (statement,),
        ).fetchone()
    return row is not None and row[0] > 0


def running_on(backend: PostgresBackend, job_id: str, pid: int) -> bool:
    """Whether the job is running, claimed by the worker process ``pid``."""
    record = backend.store.load_job(job_id)
    return "running" == record.status and (record.worker or "").endswith(f":{pid}")


class TestDeterminism:
    def test_twenty_jobs_two_workers_match_in_process_runs(
        self, backend: PostgresBackend, start_worker: Any
    ) -> None:
        """20 jobs over 2 workers all complete, each equal to its in-process run."""
        start_worker(concurrency=2)
        start_worker(concurrency=2)
        wait_until(lambda: workers_registered(backend, 2), WAIT, "two workers")
        flow = chain_flow(delay=0.02)
        handles = [
            flow.submit("step", {"n": 0, "steps": 4, "seed": i}, backend=backend) for i in range(20)
        ]
        assert isinstance(backend, JobExecutor)
        assert isinstance(handles[0], JobHandle)
        finals = [h.wait(timeout=WAIT) for h in handles]
        for i, final in enumerate(finals):
            expected = oracle(4, i)
            assert expected.status == final.status
            assert expected.shared_data == final.shared_data
            assert history(expected) == history(final)
        ran_on = {r.worker for r in backend.store.list_jobs()}
        assert 2 == len(ran_on)


class TestWorkerKilled:
    def test_sigkill_then_reap_resumes_from_last_checkpoint_elsewhere(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """B's reaper requeues the job; only activations after the last checkpoint run twice."""
        log = tmp_path / "effects.log"
        a = start_worker()
        h = chain_flow(delay=0.15, log=str(log)).submit(
            "step", {"n": 0, "steps": 8}, backend=backend
        )
        wait_until(lambda: len(logged(log, h.job_id)) >= 3, WAIT, "three activations on A")
        a.signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        record = backend.store.load_job(h.job_id)
        assert "running" == record.status
        assert record.state is not None
        redo = {f"{h.job_id}:{t['seq']}" for t in record.state["pending_tasks"]}
        before = [k for k, _ in logged(log, h.job_id)]
        b = start_worker("--reap-every", "1")  # B's own reaper, every second
        final = h.wait(timeout=WAIT)
        assert "completed" == final.status
        assert oracle(8).shared_data == final.shared_data
        counts = Counter(k for k, _ in logged(log, h.job_id))
        twice = {k for k, c in counts.items() if c > 1}
        assert 1 == len(redo)
        assert twice <= redo
        assert all(1 == counts[k] for k in before if k not in redo)
        assert max(counts.values()) <= 2
        after = [pid for k, pid in logged(log, h.job_id)[len(before) :]]
        assert {b.pid} == set(after)
        assert record.attempt + 2 == backend.store.load_job(h.job_id).attempt  # fenced, claimed
        assert "reaped job" in b.output()

    def test_killed_after_taking_the_queue_entry_before_claiming(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """A worker dies holding the job's queue entry, the job still queued: it runs on B.

        The dead worker's entry held the job's queue lock, so nothing else could run it.
        """
        log = tmp_path / "effects.log"
        h = chain_flow(delay=0.05, log=str(log)).submit(
            "step", {"n": 0, "steps": 3}, backend=backend
        )
        with row_locked(backend.dsn, h.job_id):
            a = start_worker()
            wait_until(
                lambda: waiting_on_lock(backend, CLAIM),
                WAIT,
                "A to take the entry and claim the job",
            )
            a.signal(signal.SIGKILL)
            a.proc.wait(timeout=10)
        assert "queued" == h.status()
        assert 1 == len(backend._queue_jobs(h.job_id, "doing"))
        b = start_worker()
        reaped: dict[str, str] = {}
        wait_until(lambda: reaped.update(backend.reap()) or reaped, WAIT, "the reaper to act")
        assert {h.job_id: "queued"} == reaped
        final = h.wait(timeout=WAIT)
        assert "completed" == final.status
        assert oracle(3).shared_data == final.shared_data
        assert {b.pid} == {pid for _, pid in logged(log, h.job_id)}

    def test_poison_job_fails_after_max_attempts(self, backend: PostgresBackend) -> None:
        """A job whose runners keep dying is failed by the reaper after max_attempts runs.

        The runners here are claims that never heartbeat (as a killed worker leaves them),
        so a short stall timeout is safe; the SIGKILL case above uses real workers.
        """
        h = chain_flow().submit("step", {"n": 0, "steps": 1}, backend=backend)
        store = backend.store
        for run in range(1, 3):
            assert store.claim_queued(h.job_id, worker=f"ghost:{run}") is not None
            reaped: dict[str, str] = {}
            wait_until(
                lambda out=reaped: (
                    out.update(backend.reap(stall_timeout=0.2, max_attempts=2)) or out
                ),
                10,
                "reap",
            )
            assert {h.job_id: "queued" if run < 2 else "failed"} == reaped
        assert store.claim_queued(h.job_id, worker="ghost:3") is None
        assert [] == backend._queue_jobs(h.job_id, "todo")  # nothing left to run
        assert "failed" == h.status()
        assert "failed" == h.wait(timeout=1).status


STALL = 2.0
"""The workers' stall timeout in these tests (``--stall-timeout``)."""

REAP_PERIOD = 0.5
"""The period of the workers' own reaper in the recovery tests."""

SLACK = 1.0
"""Beyond stall timeout + reaper period: B finishing its current short job, then claiming."""


class TestRecoveryBound:
    @pytest.mark.parametrize("moment", ["before_claiming", "while_running", "while_checkpointing"])
    def test_job_runs_again_within_the_bound_ahead_of_a_backlog(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path, moment: str
    ) -> None:
        """A's job runs again on B within stall timeout + reaper period, 200 jobs still queued.

        A dies at ``moment`` of its job; B, busy with a backlog of 200 short jobs, runs the
        workers' own periodic reaper: the job must not wait for the backlog to drain.
        """
        log = tmp_path / "effects.log"
        reaper = ("--reap-every", str(REAP_PERIOD))
        h = chain_flow(delay=0.1, log=str(log)).submit(
            "step", {"n": 0, "steps": 30}, backend=backend
        )
        quick = chain_flow(delay=0.05, flow_id="quick")
        backlog = [quick.submit("step", {"n": 0, "steps": 0}, backend=backend) for _ in range(200)]
        with contextlib.ExitStack() as held:
            if moment == "before_claiming":
                held.enter_context(row_locked(backend.dsn, h.job_id))
            a = start_worker(*reaper)
            if moment == "before_claiming":
                wait_until(lambda: waiting_on_lock(backend, CLAIM), WAIT, "A to claim the job")
            else:
                wait_until(lambda: len(logged(log, h.job_id)) >= 2, WAIT, "two activations on A")
            b = start_worker(*reaper)
            wait_until(lambda: workers_registered(backend, 2), WAIT, "B to start")
            if moment == "while_checkpointing":
                held.enter_context(row_locked(backend.dsn, h.job_id))
                wait_until(lambda: waiting_on_lock(backend, CHECKPOINT), WAIT, "A to checkpoint")
            a.signal(signal.SIGKILL)
            killed = time.monotonic()
            a.proc.wait(timeout=10)
        assert ("queued" if moment == "before_claiming" else "running") == h.status()
        bound = STALL + REAP_PERIOD + SLACK
        wait_until(
            lambda: running_on(backend, h.job_id, b.pid),
            bound - (time.monotonic() - killed),
            f"A's job to run on B within {bound} s of A's death",
        )
        waiting = sum(1 for job in backlog if "queued" == job.status())
        assert waiting > 0, "the backlog drained first: the recovery did not go ahead of it"
        assert "completed" == h.wait(timeout=WAIT).status


class TestPauseResume:
    def test_pause_on_a_resume_on_b(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """Pause stops A between activations (the job's work is left pending); B resumes;
        the result equals an uninterrupted run."""
        log = tmp_path / "effects.log"
        a = start_worker()
        h = chain_flow(delay=0.08, log=str(log)).submit(
            "step", {"n": 0, "steps": 10}, backend=backend
        )
        wait_until(lambda: len(logged(log, h.job_id)) >= 2, WAIT, "two activations on A")
        h.pause()
        paused = h.wait(timeout=5)
        assert "paused" == paused.status
        assert paused.pending_tasks
        a.signal(signal.SIGTERM)
        assert 0 == a.proc.wait(timeout=10)
        b = start_worker()
        h.resume()
        final = h.wait(timeout=WAIT)
        expected = oracle(10)
        assert "completed" == final.status
        assert expected.shared_data == final.shared_data
        keys = [k for k, _ in logged(log, h.job_id)]
        assert len(keys) == len(set(keys)) == 11
        pids = [pid for _, pid in logged(log, h.job_id)]
        assert {a.pid, b.pid} == set(pids)


class TestCancel:
    def test_cancel_running_and_queued(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """A running job is cancelled between its activations (long before its end); a
        queued one never runs."""
        log = tmp_path / "effects.log"
        start_worker(concurrency=1)
        flow = chain_flow(delay=0.1, log=str(log))
        running = flow.submit("step", {"n": 0, "steps": 100}, backend=backend)
        queued = flow.submit("step", {"n": 0, "steps": 2}, backend=backend)
        wait_until(lambda: len(logged(log, running.job_id)) >= 2, WAIT, "the first job running")
        queued.cancel()
        assert "cancelled" == queued.status()
        running.cancel()
        assert "cancelled" == running.wait(timeout=5).status
        assert len(logged(log, running.job_id)) < 100
        later = flow.submit("step", {"n": 0, "steps": 1}, backend=backend)
        assert "completed" == later.wait(timeout=WAIT).status
        assert [] == logged(log, queued.job_id)
        assert "cancelled" == queued.wait(timeout=1).status

    def test_cli_lists_and_cancels_jobs_of_a_postgres_store(
        self,
        backend: PostgresBackend,
        start_worker: Any,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`routilux jobs/show/cancel --store postgresql://...` work on the shared store."""
        import json

        from routilux.cli import main

        dsn = backend.store.dsn
        log = tmp_path / "effects.log"
        start_worker(concurrency=1)
        running = chain_flow(delay=0.1, log=str(log)).submit(
            "step", {"n": 0, "steps": 100}, backend=backend
        )
        wait_until(lambda: len(logged(log, running.job_id)) >= 2, WAIT, "the job running")
        assert 0 == main(["jobs", "--store", dsn, "--json"])
        rows = json.loads(capsys.readouterr().out)
        assert [(running.job_id, "running")] == [(r["job_id"], r["status"]) for r in rows]
        # The runner is a worker process: cancel asks it and waits for the job to rest.
        assert 0 == main(["cancel", running.job_id, "--store", dsn, "--wait", "10"])
        assert f"job {running.job_id} cancelled" in capsys.readouterr().out
        assert 0 == main(["show", running.job_id, "--store", dsn, "--json"])
        assert "cancelled" == json.loads(capsys.readouterr().out)["status"]


class TestDoubleResumeAndFencing:
    def test_second_resume_is_rejected_and_second_defer_refused(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """Of two concurrent resumes one wins; a second queue entry for the job is refused."""
        log = tmp_path / "effects.log"
        h = chain_flow(delay=0.05, log=str(log)).submit(
            "step", {"n": 0, "steps": 6}, backend=backend
        )
        h.pause()  # still queued: paused at once, it leaves the queue
        assert "paused" == h.status()
        outcomes: list[str] = []

        def resume() -> None:
            try:
                h.resume()
                outcomes.append("resumed")
            except InvalidStateError:
                outcomes.append("rejected")

        threads = [threading.Thread(target=resume) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ["rejected", "resumed"] == sorted(outcomes)
        key = job_lock(h.job_id)
        with pytest.raises(AlreadyEnqueued):
            backend.app.configure_task(
                RUN_TASK, queue="routilux", lock=key, queueing_lock=key
            ).defer(job_id=h.job_id)
        start_worker()
        assert "completed" == h.wait(timeout=WAIT).status
        keys = [k for k, _ in logged(log, h.job_id)]
        assert len(keys) == len(set(keys)) == 7

    def test_stale_attempt_checkpoint_is_refused(self, backend: PostgresBackend) -> None:
        """A runner whose job was taken over stops at its next checkpoint, writing nothing."""
        store = backend.store
        flow = chain_flow(delay=0.05)
        from routilux.store import create_job

        job_id = create_job(
            store, flow, "step", {"n": 0, "steps": 40}, options={"checkpoint_every": 1}
        )
        outcome: list[BaseException] = []

        def runner() -> None:
            try:
                run_job(job_id, store, worker="zombie")
            except StaleAttemptError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=runner)
        thread.start()
        wait_until(lambda: (store.load_job(job_id).state or {}).get("shared_data"), 10, "progress")
        taken = store.claim_job(job_id, worker="other", statuses={"running"})
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert 1 == len(outcome)
        assert taken == outcome[0].current  # type: ignore[attr-defined]
        record = store.load_job(job_id)
        assert ("running", "other", taken) == (record.status, record.worker, record.attempt)
        with pytest.raises(StaleAttemptError):
            store.save_checkpoint(job_id, record.state or {}, attempt=taken - 1)


class TestGracefulShutdown:
    def test_sigterm_finishes_the_running_job(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """SIGTERM: the worker takes no new job, finishes the running one and exits 0.

        Its own reaper runs meanwhile, and stops with it.
        """
        log = tmp_path / "effects.log"
        a = start_worker("--reap-every", "0.2")
        flow = chain_flow(delay=0.1, log=str(log))
        h = flow.submit("step", {"n": 0, "steps": 6}, backend=backend)
        wait_until(lambda: len(logged(log, h.job_id)) >= 2, WAIT, "the job running")
        nxt = flow.submit("step", {"n": 0, "steps": 1}, backend=backend)
        a.signal(signal.SIGTERM)
        assert 0 == a.proc.wait(timeout=WAIT)
        assert "completed" == h.status()
        assert "queued" == nxt.status()
        keys = [k for k, _ in logged(log, h.job_id)]
        assert len(keys) == len(set(keys)) == 7

    def test_sigterm_with_timeout_requeues_and_second_signal_leaves_it_reapable(
        self, backend: PostgresBackend, start_worker: Any, tmp_path: Path
    ) -> None:
        """With --shutdown-timeout the job goes back to the queue; two signals: reaped later."""
        log = tmp_path / "effects.log"
        flow = chain_flow(delay=0.1, log=str(log))
        a = start_worker("--shutdown-timeout", "0.2")
        h = flow.submit("step", {"n": 0, "steps": 20}, backend=backend)
        wait_until(lambda: len(logged(log, h.job_id)) >= 2, WAIT, "the job running on A")
        a.signal(signal.SIGTERM)
        assert 0 == a.proc.wait(timeout=WAIT)
        assert "queued" == h.status()
        b = start_worker()
        wait_until(lambda: any(p == b.pid for _, p in logged(log, h.job_id)), WAIT, "B running it")
        b.signal(signal.SIGTERM)
        wait_until(lambda: "Stop requested" in b.output(), 10, "B to hear the first signal")
        b.signal(signal.SIGTERM)
        assert -signal.SIGTERM == b.proc.wait(timeout=10)
        assert "running" == h.status()
        reaped: dict[str, str] = {}
        wait_until(lambda: reaped.update(backend.reap()) or reaped, 10, "the reaper")
        start_worker()
        assert "completed" == h.wait(timeout=WAIT).status
        counts = Counter(k for k, _ in logged(log, h.job_id))
        assert 21 == len(counts)
        assert sum(counts.values()) - 21 <= 1  # at most the activation in flight on B


class TestSchemaAndFlows:
    def test_db_init_is_idempotent_and_store_requires_it(
        self, clean_db: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`routilux db init` creates the schema once; a store on a bare database says so."""
        import psycopg

        from routilux.cli import main
        from routilux.exceptions import JobStoreError
        from routilux_postgres import PostgresJobStore

        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bare")
            conn.execute("CREATE DATABASE bare")
        bare = clean_db.rsplit("/", 1)[0] + "/bare"
        with pytest.raises(JobStoreError, match="routilux db init"):
            PostgresJobStore(bare)
        assert 0 == main(["db", "init", "--dsn", bare])
        assert "applied routilux schema version 1" in capsys.readouterr().out
        assert 0 == main(["db", "migrate", "--dsn", bare])
        assert "nothing to do" in capsys.readouterr().out
        PostgresJobStore(bare).close()

    def test_migration_to_the_checkpoint_log_keeps_every_job(
        self, clean_db: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A database of schema 2 (job states in one column) migrates to the checkpoint
        log: every job loads as it was, its state is its first checkpoint, and a paused one
        resumes and completes."""
        import json

        import psycopg

        from routilux.cli import main
        from routilux.store import flow_fingerprint
        from routilux_postgres import PostgresJobStore
        from routilux_postgres._schema import MIGRATIONS

        flow = chain_flow()
        js = flow.execute("step", {"steps": 3})
        assert js.wait_for_completion(10), f"job still {js.status}"
        flow.shutdown()
        done = js.serialize()
        done["checkpoint_seq"] = 4
        paused = {**done, "status": "paused", "checkpoint_seq": 2}
        data = flow.serialize()
        fingerprint = flow_fingerprint(data)
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS old2")
            conn.execute("CREATE DATABASE old2")
        old = clean_db.rsplit("/", 1)[0] + "/old2"
        with psycopg.connect(old, autocommit=True) as conn:
            conn.execute("CREATE TABLE routilux_schema (version integer NOT NULL)")
            for version, sql in MIGRATIONS[:2]:
                conn.execute(sql)
                conn.execute("INSERT INTO routilux_schema (version) VALUES (%s)", (version,))
            conn.execute(
                "INSERT INTO routilux_flows (flow_id, fingerprint, flow_json) VALUES (%s, %s, %s)",
                (data["flow_id"], fingerprint, json.dumps(data)),
            )
            for job_id, status, state in (
                ("done", "completed", done),
                ("paused", "paused", paused),
                ("new", "queued", None),
            ):
                conn.execute(
                    "INSERT INTO routilux_jobs (job_id, flow_id, fingerprint, status, "
                    "entry_routine_id, entry_params, options, state_json, checkpoint_seq) "
                    "VALUES (%s, %s, %s, %s, 'step', '{\"steps\": 3}', '{}', %s, %s)",
                    (
                        job_id,
                        data["flow_id"],
                        fingerprint,
                        status,
                        None if state is None else json.dumps(state),
                        0 if state is None else state["checkpoint_seq"],
                    ),
                )
        assert 0 == main(["db", "migrate", "--dsn", old])
        assert "applied routilux schema version 3" in capsys.readouterr().out
        store = PostgresJobStore(old)
        try:
            assert done == store.load_job("done").state
            assert paused == store.load_job("paused").state
            assert None is store.load_job("new").state
            assert [(4, "full", "completed")] == [
                (c.seq, c.kind, c.status) for c in store.checkpoints("done")
            ]
            assert "completed" == run_job("paused", store).status
            assert "completed" == run_job("new", store).status
            assert ["paused", "completed"] == [c.status for c in store.checkpoints("paused")]
        finally:
            store.close()

    def test_changed_flow_is_not_resumed(self, backend: PostgresBackend) -> None:
        """A job whose stored flow no longer matches its fingerprint refuses to run."""
        from routilux.exceptions import FlowMismatchError
        from routilux.store import create_job

        store = backend.store
        job_id = create_job(store, chain_flow(), "step", {"n": 0, "steps": 1})
        with store._conn() as conn:
            conn.execute(
                "UPDATE routilux_flows SET flow_json = jsonb_set(flow_json, '{name}', '\"x\"')"
            )
        with pytest.raises(FlowMismatchError):
            run_job(job_id, store)
        assert "pending" == store.load_job(job_id).status

"""
The checkpoint log of the SQL stores (issue "Checkpoints that cost what changed"): each
checkpoint writes what changed; any kept checkpoint loads as the job was then; a fork
resumes like the original would have; retention; a crash while writing; schema upgrades.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import run_job_within, within

from routilux import Flow, JobState, Routine
from routilux.codec._job_states import dump_job_state
from routilux.exceptions import ConfigurationError, JobNotFoundError, JobStoreError
from routilux.registry import register_routine
from routilux.serialization import is_delta
from routilux.store import SqliteJobStore, create_job


WAIT = 10.0


@register_routine(name="tests.log.Source")
class Source(Routine):
    """Entry: emits ``item`` for 0..n-1."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 3, **_: Any) -> None:
        for i in range(n):
            self.emit("item", i=i)


@register_routine(name="tests.log.Worker")
class Worker(Routine):
    """Writes shared data, the shared log and an output per item; passes a square on."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)
        self.define_event("square", ["v"])

    def take(self, i: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data(f"k{i % 3}", i)
        js.append_to_shared_log({"i": i})
        self.send_output("seen", i=i)
        self.emit("square", v=i * i)


@register_routine(name="tests.log.Sink")
class Sink(Routine):
    """Adds what it gets to shared_data["total"]; pauses the job at ``pause_at``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("input", self.take)

    def take(self, v: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        js = ctx.job_state
        js.update_shared_data("total", js.get_shared_data("total", 0) + v)
        if v == self.get_config("pause_at"):
            ctx.flow.pause(js, reason="asked")


def make_flow(pause_at: int | None = None) -> Flow:
    flow = Flow("log", execution_strategy="sequential")
    flow.add_routine(Source(), "src")
    flow.add_routine(Worker(), "work")
    sink = Sink()
    sink.set_config(pause_at=pause_at)
    flow.add_routine(sink, "sink")
    flow.connect("src", "item", "work", "input")
    flow.connect("work", "square", "sink", "input")
    return flow


def _timeless(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("timestamp", "execution_time")}


def outcome(state: dict[str, Any]) -> dict[str, Any]:
    """What a job did, without its ids and times."""
    history = state["execution_history"]
    return {
        "status": state["status"],
        "shared_data": state["shared_data"],
        "shared_log": [_timeless(e) for e in state["shared_log"]],
        "outputs": [(o["routine_id"], o["data"]) for o in state["output_log"]],
        "history": [(r["routine_id"], r["event_name"], _timeless(r["data"])) for r in history],
    }


@pytest.fixture
def store(tmp_path: Path) -> SqliteJobStore:
    with SqliteJobStore(tmp_path / "s.db", keep_checkpoints=None) as s:
        yield s


def test_every_checkpoint_loads_as_the_job_was_then(store: SqliteJobStore) -> None:
    """A job checkpointed after every activation (whole, then deltas, folded now and
    then): loading it at each sequence number gives exactly the state captured in-process
    when that checkpoint was taken."""
    flow = make_flow()
    job_id = create_job(store, flow, "src", {"n": 40})
    attempt = store.claim_job(job_id, worker="test")
    js = JobState(flow.flow_id)
    js.job_id = job_id
    captured: dict[int, dict[str, Any]] = {}

    def checkpoint(job_state: JobState, document: dict[str, Any]) -> bool:
        # A sequential job runs nothing while its runner hands a checkpoint over.
        with job_state.lock:
            captured[document["checkpoint_seq"]] = dump_job_state(job_state)
        return store.save_checkpoint(job_id, document, attempt=attempt)

    within(  # the sequential execute runs the job on the calling thread
        WAIT,
        "the checkpointed execute to return",
        flow.execute,
        "src",
        {"n": 40},
        job_state=js,
        checkpoint=checkpoint,
        checkpoint_deltas=True,
        checkpoint_every=1,
    )
    assert js.wait_for_completion(WAIT), f"job still {js.status}"
    flow.shutdown()
    log = store.checkpoints(job_id)
    assert [c.seq for c in log] == sorted(captured)
    kinds = [c.kind for c in log]
    assert "full" == kinds[0]
    assert kinds.count("delta") > len(kinds) // 2, kinds
    assert kinds.count("full") > 1, "the log was never folded"
    for seq, then in captured.items():
        loaded = store.load_checkpoint(job_id, seq)
        pending, queued_then = loaded.pop("pending_tasks"), then.pop("pending_tasks")
        assert then == loaded, f"checkpoint {seq}"
        assert queued_then == pending[: len(queued_then)]
    final = store.load_job(job_id).state
    assert final is not None
    assert outcome(dump_job_state(js)) == outcome(final)
    assert "completed" == final["status"]


def test_each_checkpoint_writes_about_what_changed(store: SqliteJobStore) -> None:
    """The bytes a job's checkpoints take in the store grow with the job, not with the
    square of its length: checkpointing after every activation costs less than three
    times the final document."""
    job_id = create_job(store, make_flow(), "src", {"n": 300}, options={"checkpoint_every": 1})
    assert "completed" == run_job_within(job_id, store).status
    final = store.load_job(job_id).state
    size = len(json.dumps(final, separators=(",", ":")))
    with sqlite3.connect(store.path) as conn:
        (written, rows) = conn.execute(
            "SELECT sum(length(body)), count(*) FROM routilux_checkpoints WHERE job_id = ?",
            (job_id,),
        ).fetchone()
    conn.close()
    assert rows == store.load_job(job_id).checkpoint_seq > 600
    assert written < 3 * size, (written, size)


@pytest.mark.parametrize("at", [1, 2, 101, 201])
def test_a_fork_resumed_ends_as_the_uninterrupted_job(store: SqliteJobStore, at: int) -> None:
    """Fork at checkpoint k, then run the fork: it ends as the original ended (its data,
    log, outputs and history), and the original is untouched."""
    job_id = create_job(store, make_flow(), "src", {"n": 100}, options={"checkpoint_every": 1})
    original = run_job_within(job_id, store)
    assert "completed" == original.status
    before = store.load_job(job_id)
    assert at < before.checkpoint_seq
    fork = store.fork(job_id, at=at)
    assert fork.job_id != job_id
    assert ("paused", {"job_id": job_id, "seq": at}) == (fork.status, fork.forked_from)
    assert fork.state is not None
    assert {"job_id": job_id, "seq": at} == fork.state["metadata"]["forked_from"]
    assert "completed" == run_job_within(fork.job_id, store).status
    after = store.load_job(fork.job_id).state
    assert after is not None and before.state is not None
    assert outcome(before.state) == outcome(after)
    assert before.state == store.load_job(job_id).state


def test_a_fork_sets_shared_data_and_keeps_ids_apart(store: SqliteJobStore) -> None:
    """fork(shared_data=...) sets keys over the checkpoint's data; a fork id in use or a
    checkpoint the store does not keep is refused, naming what is wrong."""
    job_id = create_job(store, make_flow(), "src", {"n": 3}, options={"checkpoint_every": 1})
    run_job_within(job_id, store)
    fork = store.fork(job_id, at=2, new_job_id="f1", shared_data={"total": 1000, "extra": "x"})
    assert "f1" == fork.job_id
    assert fork.state is not None
    assert (1000, "x") == (fork.state["shared_data"]["total"], fork.state["shared_data"]["extra"])
    with pytest.raises(JobStoreError, match="'f1' exists already"):
        store.fork(job_id, at=2, new_job_id="f1")
    with pytest.raises(JobNotFoundError, match=r"keeps no checkpoint 99 of job .* \(it keeps 1 to"):
        store.fork(job_id, at=99)
    with pytest.raises(JobNotFoundError):
        store.fork("nope")


def test_a_fork_lists_and_loads_only_its_own_checkpoints(store: SqliteJobStore) -> None:
    """A fork's first checkpoint is the one after its origin's: it is the state fork
    returned; the checkpoints it was made from are its origin's, not its own, so they are
    neither listed nor loaded under its id; a fork of a fork resumes like the original."""
    job_id = create_job(store, make_flow(), "src", {"n": 4}, options={"checkpoint_every": 1})
    original = store.load_job(run_job_within(job_id, store).job_id)
    fork = store.fork(job_id, at=5, new_job_id="f")
    assert 6 == fork.checkpoint_seq
    assert [(6, "delta", "paused")] == [(c.seq, c.kind, c.status) for c in store.checkpoints("f")]
    assert fork.state == store.load_checkpoint("f", 6) == store.load_job("f").state
    with pytest.raises(JobNotFoundError, match=r"no checkpoint 5 of job 'f' \(it keeps 6 to 6\)"):
        store.load_checkpoint("f", 5)
    assert "completed" == run_job_within("f", store).status
    seqs = [c.seq for c in store.checkpoints("f")]
    assert 6 == seqs[0] and seqs == sorted(seqs) and len(seqs) > 1
    again = store.fork("f", at=7, new_job_id="g", shared_data={"note": 1})
    assert {"job_id": "f", "seq": 7} == again.forked_from
    assert again.state is not None and "g" == again.state["job_id"]
    assert [8] == [c.seq for c in store.checkpoints("g")]
    run_job_within("g", store)
    finished = store.load_job("g").state
    assert original.state is not None and finished is not None
    assert {**outcome(original.state)["shared_data"], "note": 1} == finished["shared_data"]
    assert outcome(original.state)["history"] == outcome(finished)["history"]


def test_retention_keeps_the_newest_of_running_and_completed_jobs(tmp_path: Path) -> None:
    """keep_checkpoints=3: a completed job keeps its newest three checkpoints (each
    loadable) and the whole one they are rebuilt from; a paused job keeps them all."""
    with SqliteJobStore(tmp_path / "s.db", keep_checkpoints=3) as store:
        done = create_job(store, make_flow(), "src", {"n": 30}, options={"checkpoint_every": 1})
        run_job_within(done, store)
        kept = store.checkpoints(done)
        newest = store.load_job(done).checkpoint_seq
        assert [newest - 2, newest - 1, newest] == [c.seq for c in kept][-3:]
        assert len(kept) < newest
        assert "full" == kept[0].kind
        for info in kept:
            assert info.seq == store.load_checkpoint(done, info.seq)["checkpoint_seq"]
        paused = create_job(
            store, make_flow(pause_at=100), "src", {"n": 30}, options={"checkpoint_every": 1}
        )
        assert "paused" == run_job_within(paused, store).status
        seq = store.load_job(paused).checkpoint_seq
        assert list(range(1, seq + 1)) == [c.seq for c in store.checkpoints(paused)]
    with pytest.raises(ConfigurationError, match="keep_checkpoints"):
        SqliteJobStore(tmp_path / "t.db", keep_checkpoints=0)


def test_a_refused_delta_is_followed_by_a_whole_snapshot() -> None:
    """A checkpoint function that refuses a delta (returns False) gets the next
    checkpoint whole, and deltas again after that."""
    flow = make_flow()
    seen: list[tuple[int, bool]] = []

    def checkpoint(job_state: JobState, document: dict[str, Any]) -> bool:
        seen.append((document["checkpoint_seq"], is_delta(document)))
        return len(seen) != 2

    js = within(
        WAIT,
        "the checkpointed execute to return",
        flow.execute,
        "src",
        {"n": 3},
        checkpoint=checkpoint,
        checkpoint_deltas=True,
        checkpoint_every=1,
    )
    assert js.wait_for_completion(WAIT), f"job still {js.status}"
    flow.shutdown()
    assert [(1, False), (2, True), (3, False)] == seen[:3]
    assert seen[3][1], seen


_CRASH = """
import os, signal, sys, threading
sys.path[:0] = [{tests!r}, os.path.dirname({tests!r})]
from test_checkpoint_log import make_flow
from routilux.store import SqliteJobStore, create_job, run_job

store = SqliteJobStore({path!r}, keep_checkpoints=None)
options = {{"checkpoint_every": 1}}
job = create_job(store, make_flow(), "src", {{"n": 20}}, job_id="j", options=options)
writes = 0

def trace(statement):
    global writes
    # The checkpoint's row is inserted; its transaction has not committed.
    # (SQLite traces the statement with its parameters in place.)
    if statement.startswith("UPDATE routilux_jobs SET status =") and "full_seq =" in statement:
        writes += 1
        if writes == {at}:
            os.kill(os.getpid(), signal.SIGKILL)

store._conn.set_trace_callback(trace)
# Bounded: a run that neither returns nor reaches write {at} exits, saying so.
runner = threading.Thread(target=run_job, args=(job, store), daemon=True)
runner.start()
runner.join(10)
sys.exit("run_job still running after 10 s" if runner.is_alive() else "run_job returned")
"""


@pytest.mark.parametrize("at", [1, 2, 17])
def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one(
    tmp_path: Path, at: int
) -> None:
    """A process killed (SIGKILL) in the middle of writing checkpoint k: the store holds
    checkpoint k-1, loadable, and the job taken over finishes as an uninterrupted one."""
    path = tmp_path / "s.db"
    code = _CRASH.format(tests=str(Path(__file__).parent), path=str(path), at=at)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=10)
    assert -9 == proc.returncode, proc.stderr.decode()
    with SqliteJobStore(path, keep_checkpoints=None) as store:
        record = store.load_job("j")
        assert (at - 1, "running") == (record.checkpoint_seq, record.status)
        assert [c.seq for c in store.checkpoints("j")] == list(range(1, at))
        state = run_job_within("j", store, takeover=True)
        assert "completed" == state.status
        reference = create_job(store, make_flow(), "src", {"n": 20})
        run_job_within(reference, store)
        expected = store.load_job(reference).state
        got = store.load_job("j").state
        assert expected is not None and got is not None
        for part in ("shared_data", "shared_log", "outputs"):
            assert outcome(expected)[part] == outcome(got)[part], part


# Today's schemas, as the releases before the checkpoint log wrote them.
_SCHEMA_1 = """
CREATE TABLE routilux_flows (flow_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
    flow_json TEXT NOT NULL, saved_at REAL NOT NULL, PRIMARY KEY (flow_id, fingerprint));
CREATE TABLE routilux_jobs (job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status TEXT NOT NULL, entry_routine_id TEXT NOT NULL,
    entry_params TEXT NOT NULL, options TEXT NOT NULL, state_json TEXT, requested TEXT,
    attempt INTEGER NOT NULL DEFAULT 0, worker TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    FOREIGN KEY (flow_id, fingerprint) REFERENCES routilux_flows (flow_id, fingerprint));
CREATE INDEX routilux_jobs_status ON routilux_jobs (status, created_at);
CREATE INDEX routilux_jobs_flow ON routilux_jobs (flow_id, created_at);
"""


@pytest.mark.parametrize("version", [1, 2])
def test_a_store_of_an_older_schema_upgrades_and_keeps_every_job(
    tmp_path: Path, version: int
) -> None:
    """A store written by an older schema (job states in one column) upgrades itself when
    opened: every job loads as it was, a paused one resumes and completes, and its log
    starts from the state it had."""
    from routilux.store import flow_fingerprint

    flow = make_flow(pause_at=4)
    js = flow.execute("src", {"n": 3})
    assert js.wait_settled(WAIT) and js.status == "paused", f"job still {js.status}"
    flow.shutdown()
    assert "paused" == js.status
    state = js.serialize()
    state["checkpoint_seq"] = 5 if version == 2 else 0
    data = make_flow(pause_at=4).serialize()
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_1)
        if version == 2:
            conn.execute(
                "ALTER TABLE routilux_jobs ADD COLUMN checkpoint_seq INTEGER NOT NULL DEFAULT 0"
            )
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute(
            "INSERT INTO routilux_flows VALUES (?, ?, ?, 0)",
            (data["flow_id"], flow_fingerprint(data), json.dumps(data)),
        )
        for job_id, status, text in (
            ("old", "paused", json.dumps(state)),
            ("new", "pending", None),
        ):
            conn.execute(
                "INSERT INTO routilux_jobs (job_id, flow_id, fingerprint, status, "
                "entry_routine_id, entry_params, options, state_json, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'src', '{\"n\": 3}', '{}', ?, 1, 1)",
                (job_id, data["flow_id"], flow_fingerprint(data), status, text),
            )
        if version == 2:
            conn.execute("UPDATE routilux_jobs SET checkpoint_seq = 5 WHERE job_id = 'old'")
    conn.close()
    with SqliteJobStore(path) as store:
        record = store.load_job("old")
        assert state == record.state
        assert [("full", "paused")] == [(c.kind, c.status) for c in store.checkpoints("old")]
        assert None is store.load_job("new").state
        assert "completed" == run_job_within("old", store).status
        assert "paused" == run_job_within("new", store).status  # at its sink's pause_at
        after = store.checkpoints("old")
        assert ["paused", "completed"] == [c.status for c in after]
        assert after[0].seq + 1 == after[1].seq == store.load_job("old").checkpoint_seq
    with sqlite3.connect(path) as conn:
        assert (3,) == conn.execute("PRAGMA user_version").fetchone()
    conn.close()


def test_checkpoint_reads_of_a_missing_job_name_it(store: SqliteJobStore) -> None:
    """checkpoints and load_checkpoint of a job the store does not hold raise
    JobNotFoundError naming it."""
    with pytest.raises(JobNotFoundError, match="'nope'"):
        store.checkpoints("nope")
    with pytest.raises(JobNotFoundError, match="'nope'"):
        store.load_checkpoint("nope", 1)
    job_id = create_job(store, make_flow(), "src")
    assert [] == store.checkpoints(job_id)
    with pytest.raises(JobNotFoundError, match=r"keeps no checkpoint 1 .* \(it keeps none\)"):
        store.load_checkpoint(job_id, 1)


def test_a_new_store_file_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """A new file gets 1 KiB pages (each checkpoint rewrites a few pages: 1 KiB ones
    write a quarter of the write-ahead log of 4 KiB ones); a file made with other pages
    keeps them and works as before."""
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("CREATE TABLE other (x)")
    conn.close()
    for path in (tmp_path / "new.db", old):
        with SqliteJobStore(path) as store:
            job_id = create_job(store, make_flow(), "src", {"n": 2})
            assert "completed" == run_job_within(job_id, store).status
    sizes = []
    for path in (tmp_path / "new.db", old):
        conn = sqlite3.connect(path)
        sizes.append(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.close()
    assert [1024, 4096] == sizes

"""
routilux.store: the SqliteJobStore, the JobStore protocol, run_job, control and fencing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from helpers import damage_checkpoint, run_job_within

from routilux import Flow, Routine
from routilux.exceptions import (
    ConfigurationError,
    FlowMismatchError,
    InvalidStateError,
    JobNotFoundError,
    JobStoreError,
    RoutineNotFoundError,
    StaleAttemptError,
)
from routilux.registry import get_routine_class, register_routine
from routilux.store import (
    JobExecutor,
    JobStore,
    LocalJobExecutor,
    SqliteJobStore,
    StoreControl,
    create_job,
    flow_fingerprint,
    load_job_state,
    run_job,
)


class _Source(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 3, **_: Any) -> None:
        for i in range(int(n)):
            self.emit("item", i=i)


class _Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.set_config(pause_at=None, gate=None)
        self.define_slot("input", self.take)

    def take(self, i: int = 0, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.modify_shared_data("seen", lambda v: [*(v or []), i])
        gate = _GATES.get(self.get_config("gate"))
        if gate is not None:
            gate[0].set()
            gate[1].wait(10)
        if self.get_config("pause_at") == i and not ctx.job_state.get_shared_data("paused"):
            ctx.job_state.update_shared_data("paused", True)
            ctx.flow.pause(ctx.job_state, reason="asked")


_GATES: dict[Any, tuple[threading.Event, threading.Event]] = {}

for _cls, _name in ((_Source, "test_store.Source"), (_Sink, "test_store.Sink")):
    try:
        get_routine_class(_name)
    except LookupError:
        register_routine(_cls, name=_name)


def make_flow(flow_id: str = "f", **sink_config: Any) -> Flow:
    flow = Flow(flow_id)
    sink = _Sink()
    sink.set_config(**sink_config)
    flow.add_routine(_Source(), "src")
    flow.add_routine(sink, "sink")
    flow.connect("src", "item", "sink", "input")
    return flow


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteJobStore(tmp_path / "sub" / "jobs.db")
    yield s
    s.close()


class TestSqliteJobStore:
    def test_implements_the_protocol(self, store: SqliteJobStore) -> None:
        """SqliteJobStore is a JobStore; LocalJobExecutor is a JobExecutor."""
        assert isinstance(store, JobStore)
        executor = LocalJobExecutor(store)
        assert isinstance(executor, JobExecutor)
        executor.shutdown()

    def test_wal_mode_and_folder_created(self, tmp_path: Path) -> None:
        """The file and its folder are created and the database runs in WAL mode."""
        path = tmp_path / "a" / "b" / "jobs.db"
        with SqliteJobStore(path) as s:
            assert path.exists()
            assert "wal" == s._connection().execute("PRAGMA journal_mode").fetchone()[0]

    def test_unusable_path_is_a_job_store_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A folder, a file that is not SQLite, or a folder that cannot be created raise
        JobStoreError naming the path and the reason; the connection opened is closed.
        """
        import sqlite3

        opened: list[sqlite3.Connection] = []
        connect = sqlite3.connect

        def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            conn = connect(*args, **kwargs)
            opened.append(conn)
            return conn

        monkeypatch.setattr(sqlite3, "connect", spy)
        not_db = tmp_path / "notes.txt"
        not_db.write_text("not a database, just text " * 20)
        cases = [
            (tmp_path, "unable to open database file"),
            (not_db, "file is not a database"),
            (not_db / "jobs.db", "File exists"),
        ]
        for path, reason in cases:
            with pytest.raises(JobStoreError) as info:
                SqliteJobStore(path)
            assert repr(str(path)) in str(info.value)
            assert reason in str(info.value)
        assert "not a database, just text " * 20 == not_db.read_text()
        assert opened  # the first two got as far as a connection ...
        for conn in opened:  # ... and closed it
            with pytest.raises(sqlite3.ProgrammingError, match="closed"):
                conn.execute("SELECT 1")

    def test_flow_versions(self, store: SqliteJobStore) -> None:
        """Flows are kept per fingerprint; the last saved version is the default."""
        one = make_flow().serialize()
        two = make_flow(pause_at=1).serialize()
        fp1 = store.save_flow(one)
        assert fp1 == store.save_flow(one)
        fp2 = store.save_flow(two)
        assert fp1 != fp2
        assert one == store.load_flow("f", fp1)
        assert two == store.load_flow("f")
        with pytest.raises(JobNotFoundError):
            store.load_flow("nope")
        with pytest.raises(ConfigurationError):
            store.save_flow({"routines": {}})

    def test_fingerprint_ignores_key_order(self) -> None:
        """The fingerprint is of canonical JSON."""
        assert flow_fingerprint({"a": 1, "b": [1, 2]}) == flow_fingerprint({"b": [1, 2], "a": 1})
        assert flow_fingerprint({"a": 1}) != flow_fingerprint({"a": 2})

    def test_job_lifecycle(self, store: SqliteJobStore) -> None:
        """Create, claim, checkpoint, list, settle and delete a job."""
        job_id = create_job(store, make_flow(), "src", {"n": 2}, job_id="j1")
        record = store.load_job(job_id)
        assert ("pending", None, 0) == (record.status, record.state, record.attempt)
        assert {"n": 2} == record.entry_params
        with pytest.raises(JobStoreError):
            create_job(store, make_flow(), "src", job_id="j1")
        attempt = store.claim_job(job_id, worker="w1")
        assert 1 == attempt
        with pytest.raises(JobStoreError, match="running by w1"):
            store.claim_job(job_id, worker="w2")
        store.save_checkpoint(job_id, {"status": "running", "x": 1}, attempt=1)
        # A document without a sequence number is the next checkpoint.
        assert {"status": "running", "x": 1, "checkpoint_seq": 1} == store.load_job(job_id).state
        assert ["j1"] == [r.job_id for r in store.list_jobs(status="running", flow_id="f")]
        assert [] == store.list_jobs(status="paused")
        assert store.list_jobs()[0].state is None  # listing does not load states
        store.request_control(job_id, "pause")
        assert "pause" == store.get_control_request(job_id)
        store.save_checkpoint(job_id, {"status": "paused"})
        assert (None, "paused") == (
            store.get_control_request(job_id),
            store.load_job(job_id).status,
        )
        assert 2 == store.set_status(job_id, "cancelled")
        assert "cancelled" == store.load_job(job_id).state["status"]
        assert store.delete_job(job_id)
        assert not store.delete_job(job_id)
        with pytest.raises(JobNotFoundError):
            store.load_job(job_id)

    def test_duplicate_job_id_writes_nothing(self, store: SqliteJobStore) -> None:
        """create_job with a job id in use is refused before the new flow is saved."""
        create_job(store, make_flow("one"), "src", job_id="j1")
        with pytest.raises(JobStoreError, match="'j1' exists already"):
            create_job(store, make_flow("two"), "src", job_id="j1")
        with pytest.raises(JobNotFoundError):
            store.load_flow("two")
        record = store.load_job("j1")
        assert ("one", "pending") == (record.flow_id, record.status)

    def test_fencing(self, store: SqliteJobStore) -> None:
        """A checkpoint under an old attempt is refused with StaleAttemptError."""
        job_id = create_job(store, make_flow(), "src")
        first = store.claim_job(job_id, worker="w1")
        second = store.claim_job(job_id, worker="w2", statuses={"running"})
        with pytest.raises(StaleAttemptError) as info:
            store.save_checkpoint(job_id, {"status": "running"}, attempt=first)
        assert (first, second) == (info.value.attempt, info.value.current)
        store.save_checkpoint(job_id, {"status": "completed"}, attempt=second)

    def test_errors(self, store: SqliteJobStore) -> None:
        """Unknown jobs, bad requests and unknown entries raise the documented errors."""
        with pytest.raises(JobNotFoundError):
            store.request_control("nope", "pause")
        with pytest.raises(JobNotFoundError):
            store.claim_job("nope", worker="w")
        with pytest.raises(JobNotFoundError):
            store.save_checkpoint("nope", {})
        job_id = create_job(store, make_flow(), "src")
        with pytest.raises(ConfigurationError):
            store.request_control(job_id, "explode")
        with pytest.raises(RoutineNotFoundError):
            create_job(store, make_flow(), "missing")
        with pytest.raises(JobNotFoundError):
            store.create_job("x", "f", "0" * 64, entry_routine_id="src")
        assert None is store.get_control_request("nope")
        store.close()
        with pytest.raises(JobStoreError, match="closed"):
            store.list_jobs()


class TestRunJob:
    def test_runs_and_checkpoints(self, store: SqliteJobStore) -> None:
        """run_job runs a new job to completion and stores the final state; the store keeps
        each checkpoint, the first whole and the others as deltas."""
        job_id = create_job(store, make_flow(), "src", {"n": 4}, options={"checkpoint_every": 2})
        state = run_job_within(job_id, store)
        assert "completed" == state.status
        assert [0, 1, 2, 3] == state.shared_data["seen"]
        log = store.checkpoints(job_id)
        assert [(1, "running", "full"), (2, "running", "delta"), (3, "completed", "delta")] == [
            (c.seq, c.status, c.kind) for c in log
        ]
        record = store.load_job(job_id)
        assert ("completed", 1) == (record.status, record.attempt)
        assert [0, 1, 2, 3] == record.state["shared_data"]["seen"]
        with pytest.raises(InvalidStateError):
            run_job_within(job_id, store)

    @pytest.mark.parametrize(
        ("entry", "slot", "expected"),
        [
            ("sink", None, [7]),  # the sink has no trigger: its input slot, as the CLI picks
            ("sink.input", None, [7]),  # ID.SLOT
            ("sink", "input", [7]),  # entry_slot=
        ],
    )
    def test_entry_slot_chosen_as_the_cli_does(
        self, store: SqliteJobStore, entry: str, slot: str | None, expected: list[int]
    ) -> None:
        """create_job enters at a built-in-like routine's input slot by default, by ID.SLOT
        or by entry_slot=; run_job delivers the entry data there."""
        job_id = create_job(store, make_flow(), entry, {"i": 7}, entry_slot=slot)
        record = store.load_job(job_id)
        assert "sink" == record.entry_routine_id
        state = run_job_within(job_id, store)
        assert ("completed", expected) == (state.status, state.shared_data["seen"])

    def test_dotted_routine_id_is_read_whole_first(self, store: SqliteJobStore) -> None:
        """An entry id with a dot that names a routine is that routine; otherwise ID.SLOT
        is split at the last dot."""
        flow = Flow("dots")
        flow.add_routine(_Sink(), "text.sink")
        job_id = create_job(store, flow, "text.sink", {"i": 1})
        assert "text.sink" == store.load_job(job_id).entry_routine_id
        other = create_job(store, flow, "text.sink.input", {"i": 2})
        record = store.load_job(other)
        assert ("text.sink", "input") == (record.entry_routine_id, record.options["entry_slot"])
        assert [2] == run_job_within(other, store).shared_data["seen"]

    def test_pause_then_resume_in_a_new_run(self, store: SqliteJobStore) -> None:
        """A job paused by a handler is stored paused; a later run_job finishes it."""
        job_id = create_job(store, make_flow(pause_at=1), "src", {"n": 4})
        state = run_job_within(job_id, store)
        assert "paused" == state.status
        record = store.load_job(job_id)
        assert "paused" == record.status
        assert 2 == len(record.state["pending_tasks"])
        flow, loaded = load_job_state(store, job_id)
        assert "paused" == loaded.status
        assert {"src", "sink"} == set(flow.routines)
        final = run_job_within(job_id, store)
        assert "completed" == final.status
        assert [0, 1, 2, 3] == final.shared_data["seen"]
        assert 2 == store.load_job(job_id).attempt

    def test_prepare_error_leaves_the_store_unchanged(self, store: SqliteJobStore) -> None:
        """If prepare raises, the job is not claimed."""
        job_id = create_job(store, make_flow(), "src")

        def prepare(flow: Flow, job_state: Any) -> None:
            raise ValueError("no")

        with pytest.raises(ValueError, match="no"):
            run_job_within(job_id, store, prepare=prepare)
        record = store.load_job(job_id)
        assert ("pending", 0) == (record.status, record.attempt)

    def test_changed_flow_is_refused(self, store: SqliteJobStore) -> None:
        """A stored flow that no longer matches the job's fingerprint is refused."""
        job_id = create_job(store, make_flow(), "src")
        record = store.load_job(job_id)
        store._connection().execute(
            "UPDATE routilux_flows SET flow_json = ? WHERE fingerprint = ?",
            ('{"flow_id": "f", "routines": {}}', record.fingerprint),
        )
        with pytest.raises(FlowMismatchError):
            run_job_within(job_id, store)

    def test_pause_and_cancel_requests(self, store: SqliteJobStore) -> None:
        """A pause request reaches a running job between activations; so does cancel."""
        for request, expected in (("pause", "paused"), ("cancel", "cancelled")):
            gate = (threading.Event(), threading.Event())
            _GATES[request] = gate
            job_id = create_job(store, make_flow(gate=request), "src", {"n": 5})
            executor = LocalJobExecutor(store, max_workers=1, poll_interval=0.0)
            handle = executor.submit_job(job_id)
            assert gate[0].wait(10)
            if request == "pause":
                handle.pause()
            else:
                handle.cancel()
            del _GATES[request]
            gate[1].set()
            state = handle.wait(10)
            assert expected == state.status
            assert expected == handle.status()
            assert len(state.shared_data["seen"]) < 5
            executor.shutdown()

    def test_wait_settled(self, store: SqliteJobStore) -> None:
        """wait_settled returns the status a job rests in, or the status when time is up."""
        gate = (threading.Event(), threading.Event())
        _GATES["settle"] = gate
        job_id = create_job(store, make_flow(gate="settle"), "src", {"n": 3})
        executor = LocalJobExecutor(store, max_workers=1, poll_interval=0.0)
        try:
            executor.submit_job(job_id)
            assert gate[0].wait(10)  # the job is inside a handler, held by the gate
            assert "running" == store.wait_settled(job_id, 0.05)
            store.request_control(job_id, "cancel")
            del _GATES["settle"]
            gate[1].set()
            # Read from another connection, as another process would.
            with SqliteJobStore(store.path) as other:
                assert "cancelled" == other.wait_settled(job_id, 10)
        finally:
            gate[1].set()
            executor.shutdown()
        assert "cancelled" == store.wait_settled(job_id, None)
        with pytest.raises(JobNotFoundError, match="nope"):
            store.wait_settled("nope", 1)

    def test_stale_runner_stops(self, store: SqliteJobStore) -> None:
        """A runner whose job was claimed again stops at its next checkpoint."""
        gate = (threading.Event(), threading.Event())
        _GATES["stale"] = gate
        job_id = create_job(
            store, make_flow(gate="stale"), "src", {"n": 3}, options={"checkpoint_every": 1}
        )
        errors: list[BaseException] = []

        def runner() -> None:
            try:
                run_job(job_id, store)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=runner, daemon=True)
        thread.start()
        assert gate[0].wait(10)
        store.set_status(job_id, "failed")  # e.g. a reaper gave up on it
        del _GATES["stale"]
        gate[1].set()
        thread.join(10)
        assert not thread.is_alive()
        assert [StaleAttemptError] == [type(e) for e in errors]
        assert "failed" == store.load_job(job_id).status

    def test_store_control_delivers_each_request_once(self, store: SqliteJobStore) -> None:
        """StoreControl returns a request once and reads the store at most every interval."""
        job_id = create_job(store, make_flow(), "src")
        control = StoreControl(store, job_id, interval=0.0)
        assert None is control.poll()
        store.request_control(job_id, "pause")
        assert "pause" == control.poll()
        assert None is control.poll()
        slow = StoreControl(store, job_id, interval=3600)
        assert "pause" == slow.poll()
        store.request_control(job_id, "cancel")
        assert None is slow.poll()  # not read again before the interval

    def test_local_executor_resume(self, store: SqliteJobStore) -> None:
        """A LocalJobExecutor handle resumes a paused job."""
        job_id = create_job(store, make_flow(pause_at=0), "src", {"n": 2})
        executor = LocalJobExecutor(store)
        handle = executor.submit_job(job_id)
        assert "paused" == handle.wait(10).status
        handle.resume()
        assert "completed" == handle.wait(10).status
        assert [0, 1] == handle.state().shared_data["seen"]
        executor.shutdown()


def _zero_pages(path: Path, pages: Iterable[int]) -> None:
    # Overwrite whole database pages with zeros, as a bad disk or a torn copy would.
    import sqlite3

    with sqlite3.connect(path) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size)
            fh.write(b"\0" * size)


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A store file with two jobs whose pages but the schema's are zeroed."""
    path = tmp_path / "damaged.db"
    with SqliteJobStore(path) as s:
        create_job(s, make_flow(), "src", job_id="j1")
        create_job(s, make_flow(), "src", job_id="j2")
        rows = s._connection().execute(
            "SELECT pageno FROM dbstat WHERE name NOT IN ('sqlite_schema', 'sqlite_master')"
        )
        pages = [row[0] for row in rows]
    assert pages, "the store has no data pages"
    _zero_pages(path, pages)
    return path


_FLOW_DOC = make_flow().serialize()
_FINGERPRINT = flow_fingerprint(_FLOW_DOC)


class TestDamagedStore:
    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.save_flow(_FLOW_DOC),
            lambda s: s.load_flow("f"),
            lambda s: s.create_job("j3", "f", _FINGERPRINT, entry_routine_id="src"),
            lambda s: s.load_job("j1"),
            lambda s: s.list_jobs(),
            lambda s: s.job_status("j1"),
            lambda s: s.wait_settled("j1", 0),
            lambda s: s.claim_job("j1", worker="w"),
            lambda s: s.save_checkpoint("j1", {"status": "running"}),
            lambda s: s.set_status("j1", "cancelled"),
            lambda s: s.request_control("j1", "pause"),
            lambda s: s.get_control_request("j1"),
            lambda s: s.delete_job("j1"),
        ],
        ids=[
            "save_flow",
            "load_flow",
            "create_job",
            "load_job",
            "list_jobs",
            "job_status",
            "wait_settled",
            "claim_job",
            "save_checkpoint",
            "set_status",
            "request_control",
            "get_control_request",
            "delete_job",
        ],
    )
    def test_every_entry_point_raises_job_store_error(self, damaged: Path, call: Any) -> None:
        """A damaged file fails every store method with JobStoreError naming it and why."""
        with SqliteJobStore(damaged) as s, pytest.raises(JobStoreError) as info:
            call(s)
        assert repr(str(damaged)) in str(info.value)
        assert "malformed" in str(info.value)

    def test_store_works_after_a_failed_write(self, damaged: Path, tmp_path: Path) -> None:
        """A failed write leaves no transaction open: the connection is usable again."""
        with SqliteJobStore(damaged) as s:
            with pytest.raises(JobStoreError):
                s.save_flow(_FLOW_DOC)
            assert not s._connection().in_transaction
            with pytest.raises(JobStoreError, match="malformed"):
                s.save_flow(_FLOW_DOC)


def _damage_row(path: Path, job_id: str, column: str, value: Any) -> None:
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE routilux_jobs SET {column} = ? WHERE job_id = ?", (value, job_id))
    conn.close()


class TestDamagedRow:
    @pytest.mark.parametrize(
        ("column", "value", "reason"),
        [
            ("entry_params", "{not json", "not valid JSON"),
            ("options", "[1, 2]", "expected a JSON object, got list"),
            ("entry_params", "1" * 5000, "not valid JSON"),
            ("attempt", "many", "expected an integer"),
        ],
        ids=["entry-params-not-json", "options-not-object", "huge-int", "attempt-not-int"],
    )
    def test_list_jobs_marks_the_damaged_row(
        self, store: SqliteJobStore, column: str, value: Any, reason: str
    ) -> None:
        """list_jobs returns every row; the damaged one says which column and why."""
        for job_id in ("j1", "j2", "j3"):
            create_job(store, make_flow(), "src", {"n": 1}, job_id=job_id)
        _damage_row(Path(store.path), "j2", column, value)
        records = store.list_jobs()
        assert ["j1", "j2", "j3"] == [r.job_id for r in records]
        assert [None, None] == [records[0].damaged, records[2].damaged]
        assert {"n": 1} == records[0].entry_params
        damaged = records[1].damaged
        assert damaged is not None
        assert damaged.startswith(f"{column}: ")
        assert reason in damaged
        assert "\n" not in damaged
        assert "pending" == records[1].status

    @pytest.mark.parametrize("column", ["entry_params", "options"])
    def test_load_job_of_a_damaged_row_names_job_and_column(
        self, store: SqliteJobStore, column: str
    ) -> None:
        """load_job of a damaged row raises JobStoreError naming the job, column and reason."""
        create_job(store, make_flow(), "src", job_id="j1")
        create_job(store, make_flow(), "src", job_id="j2")
        _damage_row(Path(store.path), "j1", column, "{not json")
        with pytest.raises(JobStoreError) as info:
            store.load_job("j1")
        message = str(info.value)
        assert "'j1'" in message
        assert column in message
        assert "not valid JSON" in message
        assert "j1" == info.value.job_id
        assert None is store.load_job("j2").damaged

    def test_load_job_of_a_damaged_checkpoint_names_job_and_checkpoint(
        self, store: SqliteJobStore
    ) -> None:
        """A checkpoint that is not JSON, or whose compressed body does not match its
        checksum, makes load_job raise JobStoreError naming the job and the checkpoint; the
        job can still be cancelled."""
        import sqlite3
        import zlib

        create_job(store, make_flow(), "src", {"n": 2}, job_id="j1")
        run_job_within("j1", store)
        seq = store.load_job("j1").checkpoint_seq
        damage_checkpoint(store.path, "j1", "{not json")
        with pytest.raises(JobStoreError) as info:
            store.load_job("j1")
        assert f"checkpoint {seq} of job 'j1' is damaged" in str(info.value)
        assert "not valid JSON" in str(info.value)
        assert "j1" == info.value.job_id
        with sqlite3.connect(store.path) as conn:
            conn.execute(
                "UPDATE routilux_checkpoints SET codec = 'zlib', body = ? WHERE job_id = 'j1'",
                (zlib.compress(b'{"other": 1}'),),
            )
        conn.close()
        with pytest.raises(JobStoreError, match="its checksum does not match"):
            store.load_job("j1")
        assert 2 == store.set_status("j1", "cancelled")
        assert "cancelled" == store.job_status("j1")

    def test_load_flow_of_a_damaged_document(self, store: SqliteJobStore) -> None:
        """A flow document that is not JSON raises JobStoreError naming the flow."""
        import sqlite3

        create_job(store, make_flow(), "src", job_id="j1")
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE routilux_flows SET flow_json = '{not json'")
        conn.close()
        with pytest.raises(JobStoreError, match="stored flow 'f' is damaged: flow_json: not valid"):
            store.load_flow("f")
        with pytest.raises(JobStoreError, match="stored flow 'f' version"):
            run_job_within("j1", store)
        assert "pending" == store.job_status("j1")


class TestNotUnicode:
    def test_text_sqlite_cannot_keep_is_a_job_store_error(self, store: SqliteJobStore) -> None:
        """A lone surrogate in a job id or a checkpoint is a JobStoreError, not UnicodeError."""
        job_id = create_job(store, make_flow(), "src", job_id="j1")
        with pytest.raises(JobStoreError, match="not valid Unicode"):
            store.load_job("j\udcff")
        with pytest.raises(JobStoreError, match="not valid Unicode"):
            store.save_checkpoint(job_id, {"status": "running", "x": "\ud800"})
        assert None is store.load_job(job_id).state

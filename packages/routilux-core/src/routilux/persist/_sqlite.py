"""
SqliteJobStore: the embedded job store, on the standard library's sqlite3.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from os import PathLike
from pathlib import Path
from typing import Any

from routilux._util._log import logger as log
from routilux.codec._values import dumps_strict
from routilux.exceptions import JobStoreError
from routilux.persist._protocols import SETTLED_STATUSES, JobRecord
from routilux.persist._sql import BaseSqlJobStore


__all__ = ["SCHEMA_VERSION", "SqliteJobStore"]

SCHEMA_VERSION = 2
"""The schema version written to ``PRAGMA user_version``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS routilux_flows (
    flow_id     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    flow_json   TEXT NOT NULL,
    saved_at    REAL NOT NULL,
    PRIMARY KEY (flow_id, fingerprint)
);
CREATE TABLE IF NOT EXISTS routilux_jobs (
    job_id           TEXT PRIMARY KEY,
    flow_id          TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    status           TEXT NOT NULL,
    entry_routine_id TEXT NOT NULL,
    entry_params     TEXT NOT NULL,
    options          TEXT NOT NULL,
    state_json       TEXT,
    requested        TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    checkpoint_seq   INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    FOREIGN KEY (flow_id, fingerprint) REFERENCES routilux_flows (flow_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS routilux_jobs_status ON routilux_jobs (status, created_at);
CREATE INDEX IF NOT EXISTS routilux_jobs_flow ON routilux_jobs (flow_id, created_at);
"""

_SUMMARY = (
    "job_id, flow_id, fingerprint, status, entry_routine_id, entry_params, options, "
    "NULL, requested, attempt, worker, created_at, updated_at"
)
_FULL = _SUMMARY.replace("NULL", "state_json")


_UPGRADES: dict[int, str] = {
    # version -> the statement that brings a database of the version before up to it
    2: "ALTER TABLE routilux_jobs ADD COLUMN checkpoint_seq INTEGER NOT NULL DEFAULT 0",
}
"""How an older schema is brought up to date, one version at a time."""


def _dumps(data: Any, what: str) -> str:
    return dumps_strict(data, what)


class SqliteJobStore(BaseSqlJobStore):
    """
    A :class:`~routilux.store.JobStore` in one SQLite file, for one machine.

    The database runs in WAL mode, so readers never wait for the writer; every write is one
    ``BEGIN IMMEDIATE`` transaction, and a busy database is waited for (``busy_timeout``)
    rather than failed, so any number of processes and threads may use one file at once.
    With ``synchronous=NORMAL`` a committed checkpoint survives the process being killed
    (not necessarily a power cut). The file and its folder are created when missing.

    Args:
        path: The database file (``":memory:"`` for a private, process-local store).
        busy_timeout: Seconds to wait for another writer before giving up.

    Raises:
        JobStoreError: The file cannot be opened as a job store (a folder, not an SQLite
            database, a folder that cannot be created, a newer schema); the message names
            the path and the reason. Every method raises it too, naming the file, when
            SQLite fails (a damaged file, a full disk, a lock held past ``busy_timeout``).

    Example:
        >>> store = SqliteJobStore(":memory:")
        >>> store.list_jobs()
        []

    .. versionadded:: 0.10
    """

    _SUMMARY_COLUMNS = _SUMMARY
    _FULL_COLUMNS = _FULL
    _STATUS_POLL = 0.05

    @staticmethod
    def _decode(value: Any) -> Any:
        return json.loads(value)

    def __init__(self, path: str | PathLike[str], *, busy_timeout: float = 30.0) -> None:
        #: The database file.
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._initialise(busy_timeout)
        except (sqlite3.Error, OSError) as exc:
            self.close()
            msg = f"cannot open the job store {self.path!r}: {exc}"
            raise JobStoreError(msg) from exc
        except BaseException:
            self.close()
            raise

    def _initialise(self, busy_timeout: float) -> None:
        # Set the connection up and create (or check) the schema.
        conn = self._connection()
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._transaction() as cur:
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                msg = (
                    f"job store {self.path!r} has schema version {version}; this routilux "
                    f"understands up to {SCHEMA_VERSION}: upgrade routilux-core"
                )
                raise JobStoreError(msg)
            fresh = (
                cur.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'routilux_jobs'"
                ).fetchone()[0]
                == 0
            )
            if not fresh and version < SCHEMA_VERSION:
                for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                    cur.execute(_UPGRADES[step])
                log.info("job_store_upgraded", path=self.path, old=version, new=SCHEMA_VERSION)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SqliteJobStore({self.path!r})"

    @property
    def url(self) -> str | None:
        """
        ``"sqlite:"`` and the file's absolute path, what :func:`~routilux.store.open_store`
        opens in any process of this machine; ``None`` for ``":memory:"``.
        """
        if self.path == ":memory:":
            return None
        return f"sqlite:{os.path.abspath(self.path)}"

    # -- plumbing -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            msg = f"{self!r} is closed"
            raise JobStoreError(msg)
        return conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        # What SQLite raises (a damaged file, a full disk, a lock held too long) is a
        # JobStoreError naming the file; the store's own errors pass through.
        try:
            yield
        except sqlite3.DatabaseError as exc:
            msg = f"cannot {action} the job store {self.path!r}: {exc}"
            raise JobStoreError(msg) from exc
        except UnicodeEncodeError as exc:
            # A value with lone surrogates (bytes that were not UTF-8, a "\ud800" escape).
            msg = f"cannot {action} the job store {self.path!r}: not valid Unicode text: {exc}"
            raise JobStoreError(msg) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        # One IMMEDIATE transaction: the write lock is taken up front, so two writers never
        # deadlock upgrading read locks; busy_timeout makes the second one wait.
        with self._lock:
            conn = self._connection()
            cur = conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    # SQLite may have rolled back already (after some errors it does):
                    # the error that got here is the one to report, not the rollback's.
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        with self._errors("write to"), self._transaction() as cur:
            yield cur

    def _status_changes(self) -> AbstractContextManager[Callable[[float], None]]:
        # SQLite has no way to tell another process of a commit: wait_settled reads the
        # status again after each interval.
        return nullcontext(time.sleep)

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._errors("read"):
            return list(self._connection().execute(sql, params).fetchall())

    # -- the statements -------------------------------------------------------------

    def _put_flow(self, flow_id: str, fingerprint: str, flow_data: Mapping[str, Any]) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO routilux_flows (flow_id, fingerprint, flow_json, saved_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (flow_id, fingerprint) "
                "DO UPDATE SET saved_at = excluded.saved_at",
                (flow_id, fingerprint, _dumps(flow_data, "flow"), time.time()),
            )

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._write() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def _put_job(self, record: JobRecord) -> float:
        now = time.time()
        with self._write() as cur:
            found = cur.execute(
                "SELECT 1 FROM routilux_flows WHERE flow_id = ? AND fingerprint = ?",
                (record.flow_id, record.fingerprint),
            ).fetchone()
            if found is None:
                raise self._missing_flow(record.flow_id, record.fingerprint, record.job_id)
            try:
                cur.execute(
                    "INSERT INTO routilux_jobs (job_id, flow_id, fingerprint, status, "
                    "entry_routine_id, entry_params, options, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.job_id,
                        record.flow_id,
                        record.fingerprint,
                        record.status,
                        record.entry_routine_id,
                        _dumps(record.entry_params, "entry_params"),
                        _dumps(record.options, "options"),
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                msg = f"a job {record.job_id!r} exists already in the store"
                raise JobStoreError(msg, job_id=record.job_id) from None
        return now

    def _claim(
        self, job_id: str, worker: str, statuses: Collection[str], attempt: int | None
    ) -> int:
        with self._write() as cur:
            row = cur.execute(
                "SELECT status, worker, attempt FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            current = self._check_claim(job_id, row, statuses, attempt) + 1
            cur.execute(
                "UPDATE routilux_jobs SET status = 'running', attempt = ?, worker = ?, "
                "requested = NULL, updated_at = ? WHERE job_id = ?",
                (current, worker, time.time(), job_id),
            )
        return current

    def _put_checkpoint(
        self, job_id: str, text: str, status: str, attempt: int | None, seq: int | None
    ) -> bool:
        with self._write() as cur:
            row = cur.execute(
                "SELECT attempt, checkpoint_seq FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if not self._check_checkpoint(job_id, row, attempt, seq):
                return False  # older than the stored checkpoint
            cur.execute(
                "UPDATE routilux_jobs SET state_json = ?, status = ?, updated_at = ?, "
                "checkpoint_seq = coalesce(?, checkpoint_seq), "
                "requested = CASE WHEN ? THEN NULL ELSE requested END WHERE job_id = ?",
                (text, status, time.time(), seq, status in SETTLED_STATUSES, job_id),
            )
        return True

    def _settle(self, job_id: str, status: str) -> int | None:
        with self._write() as cur:
            row = cur.execute(
                "SELECT attempt, state_json FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return None
            attempt = int(row[0]) + 1
            state = row[1]
            if state is not None:
                try:
                    data = json.loads(state)
                except (ValueError, TypeError, RecursionError):
                    data = None  # a damaged state is kept as it is: the job still settles
                if isinstance(data, dict):
                    data["status"] = status
                    state = _dumps(data, "state")
            cur.execute(
                "UPDATE routilux_jobs SET status = ?, attempt = ?, requested = NULL, "
                "state_json = ?, updated_at = ? WHERE job_id = ?",
                (status, attempt, state, time.time(), job_id),
            )
        return attempt

    def _put_request(self, job_id: str, request: str | None) -> bool:
        with self._write() as cur:
            cur.execute(
                "UPDATE routilux_jobs SET requested = ?, updated_at = ? WHERE job_id = ?",
                (request, time.time(), job_id),
            )
            return cur.rowcount > 0

    def close(self) -> None:
        """
        Close the database connection (later calls raise :class:`JobStoreError`).
        """
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

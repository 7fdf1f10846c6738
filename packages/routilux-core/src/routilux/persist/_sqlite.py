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
from routilux.persist._log import DEFAULT_KEEP, Tx
from routilux.persist._sql import BaseSqlJobStore


__all__ = ["SCHEMA_VERSION", "SqliteJobStore"]

SCHEMA_VERSION = 3
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
    requested        TEXT,
    attempt          INTEGER NOT NULL DEFAULT 0,
    checkpoint_seq   INTEGER NOT NULL DEFAULT 0,
    full_seq         INTEGER,
    full_bytes       INTEGER NOT NULL DEFAULT 0,
    delta_bytes      INTEGER NOT NULL DEFAULT 0,
    last_crc         INTEGER NOT NULL DEFAULT 0,
    forked_from      TEXT,
    worker           TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    FOREIGN KEY (flow_id, fingerprint) REFERENCES routilux_flows (flow_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS routilux_jobs_status ON routilux_jobs (status, created_at);
CREATE INDEX IF NOT EXISTS routilux_jobs_flow ON routilux_jobs (flow_id, created_at);
"""

_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS routilux_checkpoints (
    job_id      TEXT NOT NULL REFERENCES routilux_jobs (job_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    codec       TEXT NOT NULL,
    body        BLOB NOT NULL,
    crc         INTEGER NOT NULL,
    raw_size    INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID
"""

_SUMMARY = (
    "job_id, flow_id, fingerprint, status, entry_routine_id, entry_params, options, "
    "NULL, requested, attempt, worker, created_at, updated_at, checkpoint_seq, forked_from"
)

#: The current time as the time columns hold it (seconds since the epoch).
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

_UPGRADES: dict[int, tuple[str, ...]] = {
    # version -> the statements that bring a database of the version before up to it
    2: ("ALTER TABLE routilux_jobs ADD COLUMN checkpoint_seq INTEGER NOT NULL DEFAULT 0",),
    3: (
        # The checkpoint log: each job's state becomes its first (whole) checkpoint.
        *(
            f"ALTER TABLE routilux_jobs ADD COLUMN {column}"
            for column in (
                "full_seq INTEGER",
                "full_bytes INTEGER NOT NULL DEFAULT 0",
                "delta_bytes INTEGER NOT NULL DEFAULT 0",
                "last_crc INTEGER NOT NULL DEFAULT 0",
                "forked_from TEXT",
            )
        ),
        _CHECKPOINTS,
        "INSERT INTO routilux_checkpoints (job_id, seq, kind, status, codec, body, crc, "
        "raw_size, created_at) SELECT job_id, checkpoint_seq, 'full', status, 'json', "
        "CAST(state_json AS BLOB), 0, length(CAST(state_json AS BLOB)), updated_at "
        "FROM routilux_jobs WHERE state_json IS NOT NULL",
        "UPDATE routilux_jobs SET full_seq = checkpoint_seq, "
        "full_bytes = length(CAST(state_json AS BLOB)) WHERE state_json IS NOT NULL",
        "ALTER TABLE routilux_jobs DROP COLUMN state_json",
    ),
}
"""How an older schema is brought up to date, one version at a time."""


def _dumps(data: Any, what: str) -> str:
    return dumps_strict(data, what)


class _SqliteTx:
    # A transaction of the store's connection (see routilux.persist._log.Tx).

    __slots__ = ("_cur",)

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self._cur.execute(sql, params).fetchall())

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._cur.execute(sql, params).rowcount


class SqliteJobStore(BaseSqlJobStore):
    """
    A :class:`~routilux.store.JobStore` in one SQLite file, for one machine.

    The database runs in WAL mode, so readers never wait for the writer; every write is one
    ``BEGIN IMMEDIATE`` transaction, and a busy database is waited for (``busy_timeout``)
    rather than failed, so any number of processes and threads may use one file at once.
    The file and its folder are created when missing. Each job's checkpoints are a log
    (see :meth:`checkpoints`): a checkpoint writes what changed since the one before,
    compressed.

    Durability: by default (``synchronous=NORMAL``) a committed checkpoint survives the
    process being killed, but a power cut or an operating system crash may lose the
    checkpoints committed since the write-ahead log was last synced (SQLite syncs it at
    each WAL checkpoint, about every 1,000 pages (1 MiB) written): the job then resumes from an
    earlier checkpoint and re-runs more (never a corrupt file). With ``durable=True``
    (``synchronous=FULL``) every commit is synced to the disk before it returns: nothing
    committed is lost, at the price of one ``fsync`` per checkpoint (see the figures in
    the README).

    Args:
        path: The database file (``":memory:"`` for a private, process-local store).
        busy_timeout: Seconds to wait for another writer before giving up.
        keep_checkpoints: The checkpoints kept of each completed or cancelled job;
            ``None`` keeps all (see :class:`~routilux.store.sql.BaseSqlJobStore`).
        durable: Sync every commit to the disk (see above).

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
    _NOW = _NOW
    _STATUS_POLL = 0.05

    @staticmethod
    def _decode(value: Any) -> Any:
        return json.loads(value)

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        busy_timeout: float = 30.0,
        keep_checkpoints: int | None = DEFAULT_KEEP,
        durable: bool = False,
    ) -> None:
        super().__init__(keep_checkpoints=keep_checkpoints)
        #: The database file.
        self.path = str(path)
        #: Every commit is synced to the disk.
        self.durable = durable
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
        # A new file gets 1 KiB pages (an existing one keeps its own): a checkpoint rewrites
        # a few pages of the job's row, its indexes and the log, so its write-ahead log
        # bytes, and the WAL checkpoints they cause, are a quarter of 4 KiB pages'.
        conn.execute("PRAGMA page_size = 1024")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
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
                    for statement in _UPGRADES[step]:
                        cur.execute(statement)
                log.info("job_store_upgraded", path=self.path, old=version, new=SCHEMA_VERSION)
            for statement in [*_SCHEMA.split(";"), _CHECKPOINTS]:
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

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Tx]:
        if write:
            with self._write() as cur:
                yield _SqliteTx(cur)
            return
        # A read transaction: one snapshot of the database for all its queries.
        with self._lock, self._errors("read"):
            conn = self._connection()
            cur = conn.cursor()
            try:
                cur.execute("BEGIN")
                try:
                    yield _SqliteTx(cur)
                finally:
                    if conn.in_transaction:
                        cur.execute("ROLLBACK")
            finally:
                cur.close()

    def _status_changes(self) -> AbstractContextManager[Callable[[float], None]]:
        # SQLite has no way to tell another process of a commit: wait_settled reads the
        # status again after each interval.
        return nullcontext(time.sleep)

    # -- the statements -------------------------------------------------------------

    def _put_flow(self, flow_id: str, fingerprint: str, flow_data: Mapping[str, Any]) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO routilux_flows (flow_id, fingerprint, flow_json, saved_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (flow_id, fingerprint) "
                "DO UPDATE SET saved_at = excluded.saved_at",
                (flow_id, fingerprint, _dumps(flow_data, "flow"), time.time()),
            )

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

    def _settle(self, job_id: str, status: str) -> int | None:
        with self._write() as cur:
            row = cur.execute(
                "SELECT attempt FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return None
            attempt = int(row[0]) + 1
            cur.execute(
                "UPDATE routilux_jobs SET status = ?, attempt = ?, requested = NULL, "
                f"updated_at = {_NOW} WHERE job_id = ?",
                (status, attempt, job_id),
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

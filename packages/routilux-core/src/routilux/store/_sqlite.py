"""
SqliteJobStore: the embedded job store, on the standard library's sqlite3.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError, JobNotFoundError, JobStoreError, StaleAttemptError
from ._base import (
    CLAIMABLE_STATUSES,
    CONTROL_REQUESTS,
    SETTLED_STATUSES,
    JobRecord,
    flow_fingerprint,
)


__all__ = ["SCHEMA_VERSION", "SqliteJobStore"]

SCHEMA_VERSION = 1
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
    worker           TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    FOREIGN KEY (flow_id, fingerprint) REFERENCES routilux_flows (flow_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS routilux_jobs_status ON routilux_jobs (status, created_at);
CREATE INDEX IF NOT EXISTS routilux_jobs_flow ON routilux_jobs (flow_id, created_at);
"""

_SUMMARY_COLUMNS = (
    "job_id, flow_id, fingerprint, status, entry_routine_id, entry_params, options, "
    "NULL, requested, attempt, worker, created_at, updated_at"
)
_FULL_COLUMNS = _SUMMARY_COLUMNS.replace("NULL", "state_json")


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _record(row: tuple[Any, ...]) -> JobRecord:
    state = row[7]
    return JobRecord(
        job_id=row[0],
        flow_id=row[1],
        fingerprint=row[2],
        status=row[3],
        entry_routine_id=row[4],
        entry_params=json.loads(row[5]),
        options=json.loads(row[6]),
        state=json.loads(state) if state is not None else None,
        requested=row[8],
        attempt=row[9],
        worker=row[10],
        created_at=row[11],
        updated_at=row[12],
    )


class SqliteJobStore:
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

    Example:
        >>> store = SqliteJobStore(":memory:")
        >>> store.list_jobs()
        []

    .. versionadded:: 0.10
    """

    def __init__(self, path: str | PathLike[str], *, busy_timeout: float = 30.0) -> None:
        #: The database file.
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._write() as cur:
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                msg = (
                    f"job store {self.path!r} has schema version {version}; this routilux "
                    f"understands up to {SCHEMA_VERSION}: upgrade routilux-core"
                )
                raise JobStoreError(msg)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SqliteJobStore({self.path!r})"

    def __enter__(self) -> SqliteJobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            msg = f"{self!r} is closed"
            raise JobStoreError(msg)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        # One IMMEDIATE transaction: the write lock is taken up front, so two writers never
        # deadlock upgrading read locks; busy_timeout makes the second one wait.
        with self._lock:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._connection().execute(sql, params).fetchall())

    @staticmethod
    def _missing(job_id: str) -> JobNotFoundError:
        msg = f"no job {job_id!r} in the store"
        return JobNotFoundError(msg, job_id=job_id)

    # -- flows ----------------------------------------------------------------------

    def save_flow(self, flow_data: Mapping[str, Any]) -> str:
        """
        Store a serialized flow (``Flow.serialize()`` output) and return its fingerprint.
        Saving the same document again is harmless.

        Raises:
            ConfigurationError: The document has no string ``flow_id``.
        """
        flow_id = flow_data.get("flow_id")
        if not isinstance(flow_id, str) or not flow_id:
            msg = f"a flow document needs a non-empty 'flow_id', got {flow_id!r}"
            raise ConfigurationError(msg, name="flow_id", value=flow_id)
        fingerprint = flow_fingerprint(flow_data)
        with self._write() as cur:
            cur.execute(
                "INSERT INTO routilux_flows (flow_id, fingerprint, flow_json, saved_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (flow_id, fingerprint) "
                "DO UPDATE SET saved_at = excluded.saved_at",
                (flow_id, fingerprint, _dumps(flow_data), time.time()),
            )
        return fingerprint

    def load_flow(self, flow_id: str, fingerprint: str | None = None) -> dict[str, Any]:
        """
        Return a stored flow document: the version with ``fingerprint``, or the version
        saved last.

        Raises:
            JobNotFoundError: No such flow (version) is stored.
        """
        if fingerprint is None:
            rows = self._read(
                "SELECT flow_json FROM routilux_flows WHERE flow_id = ? "
                "ORDER BY saved_at DESC LIMIT 1",
                (flow_id,),
            )
        else:
            rows = self._read(
                "SELECT flow_json FROM routilux_flows WHERE flow_id = ? AND fingerprint = ?",
                (flow_id, fingerprint),
            )
        if not rows:
            version = f" version {fingerprint[:12]}" if fingerprint else ""
            msg = f"no flow {flow_id!r}{version} in the store"
            raise JobNotFoundError(msg)
        data: dict[str, Any] = json.loads(rows[0][0])
        return data

    # -- jobs -----------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        flow_id: str,
        fingerprint: str,
        *,
        entry_routine_id: str,
        entry_params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """
        Create a ``pending`` job of a stored flow version, with no state yet.

        Raises:
            JobNotFoundError: The flow version is not stored.
            JobStoreError: A job with this id exists already.
        """
        now = time.time()
        params = dict(entry_params or {})
        opts = dict(options or {})
        with self._write() as cur:
            found = cur.execute(
                "SELECT 1 FROM routilux_flows WHERE flow_id = ? AND fingerprint = ?",
                (flow_id, fingerprint),
            ).fetchone()
            if found is None:
                msg = f"no flow {flow_id!r} version {fingerprint[:12]} in the store"
                raise JobNotFoundError(msg, job_id=job_id)
            try:
                cur.execute(
                    "INSERT INTO routilux_jobs (job_id, flow_id, fingerprint, status, "
                    "entry_routine_id, entry_params, options, created_at, updated_at) "
                    "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        flow_id,
                        fingerprint,
                        entry_routine_id,
                        _dumps(params),
                        _dumps(opts),
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                msg = f"a job {job_id!r} exists already in the store"
                raise JobStoreError(msg, job_id=job_id) from None
        return JobRecord(
            job_id=job_id,
            flow_id=flow_id,
            fingerprint=fingerprint,
            status="pending",
            entry_routine_id=entry_routine_id,
            entry_params=params,
            options=opts,
            created_at=now,
            updated_at=now,
        )

    def claim_job(
        self,
        job_id: str,
        *,
        worker: str,
        statuses: Collection[str] = CLAIMABLE_STATUSES,
    ) -> int:
        """
        Take a job to run it: if its status is in ``statuses``, set it ``running``, record
        ``worker``, clear any control request, increment the attempt and return it.

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's status is not in ``statuses``.
        """
        with self._write() as cur:
            row = cur.execute(
                "SELECT status, attempt, worker FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise self._missing(job_id)
            status, attempt, holder = row
            if status not in statuses:
                by = f" by {holder}" if status == "running" and holder else ""
                msg = f"job {job_id!r} is {status}{by}; it cannot be claimed"
                raise JobStoreError(msg, job_id=job_id)
            attempt += 1
            cur.execute(
                "UPDATE routilux_jobs SET status = 'running', attempt = ?, worker = ?, "
                "requested = NULL, updated_at = ? WHERE job_id = ?",
                (attempt, worker, time.time(), job_id),
            )
        return int(attempt)

    def save_checkpoint(
        self,
        job_id: str,
        snapshot: Mapping[str, Any],
        *,
        status: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """
        Replace the job's state with ``snapshot`` and its status with ``status`` (by default
        ``snapshot["status"]``), in one transaction; a settled status clears the control
        request.

        Raises:
            JobNotFoundError: No such job.
            StaleAttemptError: ``attempt`` is not the job's current attempt.
        """
        new_status = status if status is not None else str(snapshot.get("status", "running"))
        text = _dumps(snapshot)
        with self._write() as cur:
            row = cur.execute(
                "SELECT attempt FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise self._missing(job_id)
            if attempt is not None and row[0] != attempt:
                msg = (
                    f"checkpoint of job {job_id!r} refused: this runner holds attempt "
                    f"{attempt}, the store is at attempt {row[0]}"
                )
                raise StaleAttemptError(msg, job_id=job_id, attempt=attempt, current=row[0])
            if new_status in SETTLED_STATUSES:
                cur.execute(
                    "UPDATE routilux_jobs SET state_json = ?, status = ?, requested = NULL, "
                    "updated_at = ? WHERE job_id = ?",
                    (text, new_status, time.time(), job_id),
                )
            else:
                cur.execute(
                    "UPDATE routilux_jobs SET state_json = ?, status = ?, updated_at = ? "
                    "WHERE job_id = ?",
                    (text, new_status, time.time(), job_id),
                )

    def load_job(self, job_id: str) -> JobRecord:
        """
        Return the job with its last checkpoint.

        Raises:
            JobNotFoundError: No such job.
        """
        rows = self._read(f"SELECT {_FULL_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise self._missing(job_id)
        return _record(rows[0])

    def list_jobs(
        self, *, status: str | None = None, flow_id: str | None = None
    ) -> list[JobRecord]:
        """
        Return the jobs (without their state), oldest first, optionally only those with
        ``status`` and of ``flow_id``.
        """
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if flow_id is not None:
            where.append("flow_id = ?")
            params.append(flow_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT {_SUMMARY_COLUMNS} FROM routilux_jobs{clause} ORDER BY created_at, job_id",
            tuple(params),
        )
        return [_record(r) for r in rows]

    def set_status(self, job_id: str, status: str) -> int:
        """
        Settle a job without running it: set its status, clear the control request,
        increment the attempt (fencing out any runner) and return the new attempt. The
        stored state's own ``status`` is updated too, so a loaded JobState agrees.

        Raises:
            JobNotFoundError: No such job.
        """
        with self._write() as cur:
            row = cur.execute(
                "SELECT attempt, state_json FROM routilux_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise self._missing(job_id)
            attempt = int(row[0]) + 1
            state = row[1]
            if state is not None:
                data = json.loads(state)
                if isinstance(data, dict):
                    data["status"] = status
                    state = _dumps(data)
            cur.execute(
                "UPDATE routilux_jobs SET status = ?, attempt = ?, requested = NULL, "
                "state_json = ?, updated_at = ? WHERE job_id = ?",
                (status, attempt, state, time.time(), job_id),
            )
        return attempt

    def request_control(self, job_id: str, request: str | None) -> None:
        """
        Ask the job's runner to ``"pause"`` or ``"cancel"`` it at its next activation
        boundary (``None`` withdraws the request).

        Raises:
            JobNotFoundError: No such job.
            ConfigurationError: ``request`` is not ``"pause"``, ``"cancel"`` or ``None``.
        """
        if request is not None and request not in CONTROL_REQUESTS:
            msg = f"a control request is 'pause', 'cancel' or None, got {request!r}"
            raise ConfigurationError(msg, name="request", value=request)
        with self._write() as cur:
            cur.execute(
                "UPDATE routilux_jobs SET requested = ?, updated_at = ? WHERE job_id = ?",
                (request, time.time(), job_id),
            )
            if cur.rowcount == 0:
                raise self._missing(job_id)

    def get_control_request(self, job_id: str) -> str | None:
        """
        Return the job's pending control request, or ``None``.
        """
        rows = self._read("SELECT requested FROM routilux_jobs WHERE job_id = ?", (job_id,))
        return rows[0][0] if rows else None

    def delete_job(self, job_id: str) -> bool:
        """
        Delete a job; return ``False`` when there was none. Flows are kept.
        """
        with self._write() as cur:
            cur.execute("DELETE FROM routilux_jobs WHERE job_id = ?", (job_id,))
            return cur.rowcount > 0

    def close(self) -> None:
        """
        Close the database connection (later calls raise :class:`JobStoreError`).
        """
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

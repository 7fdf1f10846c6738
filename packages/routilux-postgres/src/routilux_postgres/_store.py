"""
PostgresJobStore: the job store shared by every worker and client, in one PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from routilux.exceptions import JobStoreError
from routilux.serialization import dumps_strict
from routilux.store import SETTLED_STATUSES
from routilux.store.sql import DEFAULT_KEEP, BaseSqlJobStore, Tx, missing_job
from routilux_postgres._schema import SCHEMA_VERSION, schema_version


__all__ = ["CONTROL_CHANNEL", "STATUS_CHANNEL", "PostgresJobStore"]

CONTROL_CHANNEL = "routilux_control"
"""The NOTIFY channel of control requests (payload: the job id)."""

STATUS_CHANNEL = "routilux_status"
"""The NOTIFY channel of settled jobs (payload: ``"<job id>:<status>"``)."""

_COLUMNS = (
    "job_id, flow_id, fingerprint, status, entry_routine_id, entry_params, options, "
    "NULL::jsonb, requested, attempt, worker, extract(epoch FROM created_at)::float8, "
    "extract(epoch FROM updated_at)::float8, checkpoint_seq, forked_from"
)


_Conn = psycopg.Connection[tuple[Any, ...]]


def _notify(conn: _Conn, channel: str, payload: str) -> None:
    # NOTIFY the listeners of ``channel`` when the transaction commits.
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _strict(what: str) -> Callable[[Any], str]:
    # How a jsonb parameter is written: strict JSON (no NaN), errors naming ``what``.
    def dumps(data: Any) -> str:
        return dumps_strict(data, what)

    return dumps


def _move(conn: _Conn, job_id: str, status: str, *, fence: bool) -> int | None:
    # Set the job's status, clear its control request, increment its attempt when
    # ``fence``; return the attempt, or None when there is no such job.
    row = conn.execute(
        "UPDATE routilux_jobs SET status = %s, attempt = attempt + %s, "
        "requested = NULL, updated_at = now() WHERE job_id = %s RETURNING attempt",
        (status, 1 if fence else 0, job_id),
    ).fetchone()
    return int(row[0]) if row is not None else None


def _transition(
    conn: _Conn, job_id: str, from_statuses: Collection[str], to_status: str, *, fence: bool = True
) -> str:
    # The body of PostgresJobStore.transition, inside the caller's transaction.
    row = conn.execute(
        "SELECT status FROM routilux_jobs WHERE job_id = %s FOR UPDATE", (job_id,)
    ).fetchone()
    if row is None:
        raise missing_job(job_id)
    old = str(row[0])
    if old in from_statuses:
        _move(conn, job_id, to_status, fence=fence)
        if to_status in SETTLED_STATUSES:
            _notify(conn, STATUS_CHANNEL, f"{job_id}:{to_status}")
    return old


class _PgTx:
    # A transaction of a pooled connection (see routilux.store.sql.Tx), ``?`` placeholders.

    __slots__ = ("_conn",)

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description is not None else []

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._conn.execute(sql.replace("?", "%s"), params).rowcount


class PostgresJobStore(BaseSqlJobStore):
    """
    A :class:`~routilux.store.JobStore` in a PostgreSQL database, shared by any number of
    workers and clients on any number of machines.

    Every method is one transaction; row locks (``SELECT ... FOR UPDATE``) serialize the
    writers of one job, so a claim, a checkpoint and a cancel never interleave. The attempt
    number is the fencing token: :meth:`save_checkpoint` with an older attempt is refused with
    :class:`~routilux.exceptions.StaleAttemptError`. Control requests and settled statuses
    are also announced with ``NOTIFY`` (channels :data:`CONTROL_CHANNEL` and
    :data:`STATUS_CHANNEL`), so runners and waiters hear of them at once; the columns stay
    the truth that pollers read.

    The schema must exist: create or upgrade it with ``routilux db init --dsn DSN`` (or
    :func:`routilux_postgres.migrate`). :func:`routilux.store.open_store` opens one from a
    ``postgresql://`` or ``postgres://`` URL (the ``routilux.stores`` entry points).

    Args:
        dsn: A libpq connection string or URI (``postgresql://user@host/db``).
        max_connections: The size of the store's connection pool.
        keep_checkpoints: The checkpoints kept of each completed or cancelled job;
            ``None`` keeps all (see :class:`~routilux.store.sql.BaseSqlJobStore`).

    Raises:
        JobStoreError: The database is unreachable, or its schema is missing or newer than
            this routilux.

    .. versionadded:: 0.10
    """

    _SUMMARY_COLUMNS = _COLUMNS
    _NOW = "now()"
    _JSON = "?::jsonb"
    _LOCK_ROW = " FOR UPDATE"
    _SHARE_ROW = " FOR SHARE"
    _CHECKPOINT_EXTRA = ", heartbeat_at = now()"
    _STATUS_POLL = 1.0  # behind the notifications, in case one is missed

    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 4,
        keep_checkpoints: int | None = DEFAULT_KEEP,
    ) -> None:
        super().__init__(keep_checkpoints=keep_checkpoints)
        #: The connection string.
        self.dsn = dsn
        self._pool: psycopg_pool.ConnectionPool[_Conn] | None = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=max(1, max_connections), open=False, name="routilux"
        )
        try:
            self._pool.open(wait=True, timeout=10.0)
            with self._conn() as conn:
                version = schema_version(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self.close()
            msg = f"cannot reach the job store database: {exc}"
            raise JobStoreError(msg) from exc
        if version != SCHEMA_VERSION:
            self.close()
            if version is None or version < SCHEMA_VERSION:
                msg = (
                    f"the job store database has schema version {version}, this routilux "
                    f"needs {SCHEMA_VERSION}: run 'routilux db init --dsn ...'"
                )
            else:
                msg = (
                    f"the job store database has schema version {version}; this routilux "
                    f"understands up to {SCHEMA_VERSION}: upgrade routilux-postgres"
                )
            raise JobStoreError(msg)

    def __repr__(self) -> str:
        return "PostgresJobStore(...)"

    @property
    def url(self) -> str:
        """
        The database as a ``postgresql://`` URL, what :func:`~routilux.store.open_store`
        opens in any process: the DSN itself when it is a URL, else its ``key=value``
        settings as the URL's query (``postgresql://?host=db&dbname=app``).
        """
        if self.dsn.startswith(("postgresql://", "postgres://")):
            return self.dsn
        settings = conninfo_to_dict(self.dsn)
        query = urlencode({k: str(v) for k, v in settings.items()}, quote_via=quote)
        return f"postgresql://?{query}" if query else "postgresql://"

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _conn(self) -> Iterator[_Conn]:
        # One transaction per block: the pool commits on a clean exit, rolls back on error.
        pool = self._pool
        if pool is None:
            msg = f"{self!r} is closed"
            raise JobStoreError(msg)
        with pool.connection() as conn:
            yield conn

    # -- the statements -------------------------------------------------------------

    def _put_flow(self, flow_id: str, fingerprint: str, flow_data: Mapping[str, Any]) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO routilux_flows (flow_id, fingerprint, flow_json) "
                "VALUES (%s, %s, %s) ON CONFLICT (flow_id, fingerprint) "
                "DO UPDATE SET saved_at = now()",
                (flow_id, fingerprint, Jsonb(dict(flow_data), dumps=_strict("flow"))),
            )

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Tx]:
        # Reads and writes alike: one transaction of a pooled connection.
        with self._conn() as conn:
            yield _PgTx(conn)

    def _claim(
        self, job_id: str, worker: str, statuses: Collection[str], attempt: int | None
    ) -> int:
        # Also records a fresh heartbeat.
        with self._conn() as conn:
            row = conn.execute(
                "SELECT status, worker, attempt FROM routilux_jobs WHERE job_id = %s FOR UPDATE",
                (job_id,),
            ).fetchone()
            self._check_claim(job_id, row, statuses, attempt)
            claimed = conn.execute(
                "UPDATE routilux_jobs SET status = 'running', attempt = attempt + 1, "
                "worker = %s, heartbeat_at = now(), requested = NULL, updated_at = now() "
                "WHERE job_id = %s RETURNING attempt",
                (worker, job_id),
            ).fetchone()
        assert claimed is not None  # the row is locked
        return int(claimed[0])

    def _checkpointed(self, tx: Tx, job_id: str, status: str) -> None:
        # A settled status is announced on STATUS_CHANNEL.
        if status in SETTLED_STATUSES:
            tx.rows("SELECT pg_notify(?, ?)", (STATUS_CHANNEL, f"{job_id}:{status}"))

    def _settle(self, job_id: str, status: str) -> int | None:
        # Announced on STATUS_CHANNEL.
        with self._conn() as conn:
            attempt = _move(conn, job_id, status, fence=True)
            if attempt is not None:
                _notify(conn, STATUS_CHANNEL, f"{job_id}:{status}")
        return attempt

    def _put_request(self, job_id: str, request: str | None) -> bool:
        # Runners hear of it through CONTROL_CHANNEL at once, and by polling otherwise.
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE routilux_jobs SET requested = %s, updated_at = now() WHERE job_id = %s",
                (request, job_id),
            )
            if cur.rowcount == 0:
                return False
            _notify(conn, CONTROL_CHANNEL, job_id)
        return True

    def close(self) -> None:
        """
        Close the connection pool (later calls raise :class:`JobStoreError`).
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- what workers and the reaper need beyond the protocol -----------------------

    def claim_queued(self, job_id: str, *, worker: str) -> int | None:
        """
        Claim a job only if it is ``queued`` or ``pending`` (not paused, running or settled);
        return the new attempt, or ``None`` when the job is in another status or missing.
        This is how a queue execution takes its job: a second execution of the same job
        finds it running (or done) and does nothing.
        """
        with self._conn() as conn:
            row = conn.execute(
                "UPDATE routilux_jobs SET status = 'running', attempt = attempt + 1, "
                "worker = %s, heartbeat_at = now(), requested = NULL, updated_at = now() "
                "WHERE job_id = %s AND status IN ('queued', 'pending') RETURNING attempt",
                (worker, job_id),
            ).fetchone()
        return int(row[0]) if row is not None else None

    def transition(
        self, job_id: str, from_statuses: Collection[str], to_status: str, *, fence: bool = True
    ) -> str:
        """
        Atomically move a job from one of ``from_statuses`` to ``to_status`` (incrementing
        the attempt when ``fence``); return the status it had (unchanged when it was not in
        ``from_statuses``).

        Raises:
            JobNotFoundError: No such job.
        """
        with self._conn() as conn:
            return _transition(conn, job_id, from_statuses, to_status, fence=fence)

    def cancel_or_request(self, job_id: str) -> str:
        """
        Cancel a job in one transaction: a ``pending``, ``queued`` or ``paused`` job becomes
        ``cancelled`` at once (fenced); a ``running`` one gets a ``"cancel"`` request (and a
        NOTIFY). Return the status the job had.

        Raises:
            JobNotFoundError: No such job.
        """
        with self._conn() as conn:
            old = _transition(conn, job_id, ("pending", "queued", "paused"), "cancelled")
            if old == "running":
                conn.execute(
                    "UPDATE routilux_jobs SET requested = 'cancel', updated_at = now() "
                    "WHERE job_id = %s",
                    (job_id,),
                )
                _notify(conn, CONTROL_CHANNEL, job_id)
        return old

    def control_requests(self, job_ids: Collection[str]) -> dict[str, str]:
        """
        Return the pending control requests of ``job_ids`` (jobs without one are left out).
        """
        if not job_ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT job_id, requested FROM routilux_jobs "
                "WHERE job_id = ANY(%s) AND requested IS NOT NULL",
                (list(job_ids),),
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def heartbeat(self, job_ids: Collection[str], *, worker: str) -> None:
        """
        Record that ``worker`` is alive and still running ``job_ids``.
        """
        if not job_ids:
            return
        with self._conn() as conn:
            conn.execute(
                "UPDATE routilux_jobs SET heartbeat_at = now() "
                "WHERE job_id = ANY(%s) AND worker = %s AND status = 'running'",
                (list(job_ids), worker),
            )

    def stalled_jobs(self, stall_timeout: float) -> list[tuple[str, int, str | None]]:
        """
        Return ``(job_id, retries, worker)`` of the ``running`` jobs whose heartbeat is older
        than ``stall_timeout`` seconds (by the database's clock, so host clocks may differ).
        """
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT job_id, retries, worker FROM routilux_jobs WHERE status = 'running' "
                "AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => %s)) "
                "ORDER BY updated_at",
                (float(stall_timeout),),
            ).fetchall()
        return [(str(r[0]), int(r[1]), r[2]) for r in rows]

    def requeue_stalled(self, job_id: str, stall_timeout: float, max_attempts: int) -> str | None:
        """
        Give up on the stalled runner of a job, in one transaction: when the job is still
        ``running`` with a stale heartbeat, fence the runner out (attempt + 1) and make it
        ``queued`` again, or ``failed`` once it was retried ``max_attempts - 1`` times already.
        Return the new status, or ``None`` when the job was not stalled (any more).
        """
        with self._conn() as conn:
            row = conn.execute(
                "SELECT retries FROM routilux_jobs WHERE job_id = %s AND status = 'running' "
                "AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => %s)) "
                "FOR UPDATE",
                (job_id, float(stall_timeout)),
            ).fetchone()
            if row is None:
                return None
            new = "queued" if int(row[0]) + 1 < max_attempts else "failed"
            conn.execute(
                "UPDATE routilux_jobs SET status = %s, retries = retries + 1, "
                "attempt = attempt + 1, worker = NULL, requested = NULL, updated_at = now() "
                "WHERE job_id = %s",
                (new, job_id),
            )
            if new == "failed":
                _notify(conn, STATUS_CHANNEL, f"{job_id}:failed")
        return new

    @contextmanager
    def _status_changes(self) -> Iterator[Callable[[float], None]]:
        # Settled jobs are announced on STATUS_CHANNEL: listen on a connection of its own
        # (a pooled one would be handed to others) and wake at the first notification.
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {STATUS_CHANNEL}")

            def wait(seconds: float) -> None:
                for _ in conn.notifies(timeout=seconds, stop_after=1):
                    pass

            yield wait

"""
BaseSqlJobStore: the JobStore methods SQL stores share; each dialect writes only its SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

from routilux.codec._values import dumps_strict
from routilux.exceptions import (
    ConfigurationError,
    JobNotFoundError,
    JobStoreError,
)
from routilux.persist._log import DEFAULT_KEEP, CheckpointLog, Tx
from routilux.persist._protocols import (
    CLAIMABLE_STATUSES,
    CONTROL_REQUESTS,
    SETTLED_STATUSES,
    JobRecord,
    flow_fingerprint,
)
from routilux.persist._rows import decode_failure, job_record, missing_job
from routilux.persist._sql_checkpoints import SqlCheckpoints


__all__ = ["BaseSqlJobStore"]

_S = TypeVar("_S", bound="BaseSqlJobStore")


class BaseSqlJobStore(SqlCheckpoints):
    """
    The :class:`~routilux.store.JobStore` methods over a SQL database, for store
    implementers: the SQL they share, the checks, the errors and the checkpoint log are
    here, the dialect in a subclass.

    The tables are the stores' common schema: ``routilux_flows (flow_id, fingerprint,
    flow_json, saved_at)``, ``routilux_jobs`` with at least the columns that
    :func:`~routilux.store.sql.job_record` reads and ``checkpoint_seq, full_seq,
    full_bytes, delta_bytes, last_crc``, and ``routilux_checkpoints (job_id, seq, kind,
    status, codec, body, crc, raw_size, created_at)`` (see ``routilux.persist._log``). A
    subclass sets the class attributes ``_SUMMARY_COLUMNS`` (the job columns a row selects,
    in :func:`~routilux.store.sql.job_record`'s order, with a NULL state), ``_NOW`` (the
    SQL of the current time as ``updated_at`` holds it), ``_JSON`` (the placeholder of a
    JSON text parameter, ``?::jsonb`` for example), ``_LOCK_ROW`` and ``_SHARE_ROW`` (what
    locks a selected job row against other writers, with or without readers, for the
    transaction: empty where a transaction locks the database), ``_STATUS_POLL`` (seconds
    between two status reads of :meth:`wait_settled`) and, when its driver returns JSON
    columns as text, ``_decode``; its constructor calls this one; and it implements these
    hooks:

    - ``_tx(write=...)``: a context giving one transaction (an object with ``rows(sql,
      params)`` and ``run(sql, params)``, written with ``?`` placeholders), a write
      transaction when ``write``;
    - ``_put_flow``, ``_claim``, ``_settle`` and ``_put_request``: the writes of
      :meth:`save_flow`, :meth:`claim_job`, :meth:`set_status` and
      :meth:`request_control`, each one transaction (their comments below say what each
      must do; the static helper ``_check_claim`` checks a claim on the row read in its
      transaction, and ``_missing`` and ``_missing_flow`` give the protocol's errors);
      optionally ``_checkpointed(tx, job_id, status)`` and ``_CHECKPOINT_EXTRA``, what a
      checkpoint's transaction does more;
    - ``_status_changes()``: a context giving ``wait(seconds)``, which returns when the
      database announces a status change or after ``seconds``;
    - :meth:`close` and, for stores other processes can open, :attr:`url`.

    :class:`~routilux.store.SqliteJobStore` is the reference dialect; routilux-postgres's
    ``PostgresJobStore`` another.

    Args:
        keep_checkpoints: The checkpoints kept of each job once it completed or was
            cancelled (the newest ones, and the whole one the oldest is rebuilt from);
            ``None`` keeps all. A running, paused or failed job keeps all of its
            checkpoints.

    .. versionadded:: 0.10
    """

    def __init__(self, *, keep_checkpoints: int | None = DEFAULT_KEEP) -> None:
        if keep_checkpoints is not None and (
            type(keep_checkpoints) is not int or keep_checkpoints < 1
        ):
            msg = f"keep_checkpoints must be a positive int or None, got {keep_checkpoints!r}"
            raise ConfigurationError(msg, name="keep_checkpoints", value=keep_checkpoints)
        self._log = CheckpointLog(self._LOCK_ROW, keep_checkpoints)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks shared by the hooks -------------------------------------------------

    @property
    def url(self) -> str | None:
        """
        The URL :func:`~routilux.store.open_store` opens this store from, in any process,
        or ``None`` when no other process can open it (the default).
        """
        return None

    @staticmethod
    def _missing(job_id: str) -> JobNotFoundError:
        return missing_job(job_id)

    @staticmethod
    def _missing_flow(flow_id: str, fingerprint: str | None, job_id: str = "") -> JobNotFoundError:
        version = f" version {fingerprint[:12]}" if fingerprint else ""
        msg = f"no flow {flow_id!r}{version} in the store"
        return JobNotFoundError(msg, job_id=job_id)

    @staticmethod
    def _check_claim(
        job_id: str,
        row: Sequence[Any] | None,
        statuses: Collection[str],
        attempt: int | None,
    ) -> int:
        # The checks of a claim on the job's ``(status, worker, attempt)`` row, read (and
        # locked) in the claim's transaction, ``None`` when there is no such job: the status
        # is one of ``statuses`` and, with ``attempt``, the attempt is still that one (the
        # compare-and-set). Return the job's current attempt.
        if row is None:
            raise missing_job(job_id)
        status, holder, current = row[0], row[1], int(row[2])
        if status not in statuses:
            by = f" by {holder}" if status == "running" and holder else ""
            msg = f"job {job_id!r} is {status}{by}; it cannot be claimed"
            raise JobStoreError(msg, job_id=job_id)
        if attempt is not None and current != attempt:
            msg = (
                f"job {job_id!r} was claimed by another runner since it was read "
                f"(attempt {attempt}, now {current}); it cannot be claimed"
            )
            raise JobStoreError(msg, job_id=job_id)
        return current

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
        self._put_flow(flow_id, fingerprint, flow_data)
        return fingerprint

    def load_flow(self, flow_id: str, fingerprint: str | None = None) -> dict[str, Any]:
        """
        Return a stored flow document: the version with ``fingerprint``, or the version
        saved last.

        Raises:
            JobNotFoundError: No such flow (version) is stored.
            JobStoreError: The stored document cannot be decoded.
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
            raise self._missing_flow(flow_id, fingerprint)
        try:
            data = self._decode(rows[0][0])
        except (ValueError, TypeError, RecursionError) as exc:
            why = decode_failure(exc)
        else:
            if isinstance(data, dict):
                return data
            why = f"expected a JSON object, got {type(data).__name__}"
        version = f" version {fingerprint[:12]}" if fingerprint else ""
        msg = f"the stored flow {flow_id!r}{version} is damaged: flow_json: {why}"
        raise JobStoreError(msg)

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
        status: str = "pending",
    ) -> JobRecord:
        """
        Create a job of a stored flow version, with no state yet: ``pending`` (run it with
        :func:`~routilux.store.run_job`) or, for an executor's queue, ``queued``.

        Raises:
            JobNotFoundError: The flow version is not stored.
            JobStoreError: A job with this id exists already.
        """
        record = JobRecord(
            job_id=job_id,
            flow_id=flow_id,
            fingerprint=fingerprint,
            status=status,
            entry_routine_id=entry_routine_id,
            entry_params=dict(entry_params or {}),
            options=dict(options or {}),
        )
        with self._tx(write=True) as tx:
            found = tx.rows(
                "SELECT 1 FROM routilux_flows WHERE flow_id = ? AND fingerprint = ?",
                (flow_id, fingerprint),
            )
            if not found:
                raise self._missing_flow(flow_id, fingerprint, job_id)
            if tx.rows("SELECT 1 FROM routilux_jobs WHERE job_id = ?", (job_id,)):
                msg = f"a job {job_id!r} exists already in the store"
                raise JobStoreError(msg, job_id=job_id)
            self._insert_job(tx, record)
            row = tx.rows(
                f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (job_id,)
            )[0]
        return job_record(row, self._decode)

    def _insert_job(self, tx: Tx, record: JobRecord, checkpoint_seq: int = 0) -> None:
        # Insert the job row of ``record`` (its flow version stored, its id new).
        forked = record.forked_from
        tx.run(
            "INSERT INTO routilux_jobs (job_id, flow_id, fingerprint, status, "
            "entry_routine_id, entry_params, options, checkpoint_seq, forked_from, "
            f"created_at, updated_at) VALUES (?, ?, ?, ?, ?, {self._JSON}, {self._JSON}, ?, "
            f"{self._JSON}, {self._NOW}, {self._NOW})",
            (
                record.job_id,
                record.flow_id,
                record.fingerprint,
                record.status,
                record.entry_routine_id,
                dumps_strict(record.entry_params, "entry_params"),
                dumps_strict(record.options, "options"),
                checkpoint_seq,
                None if forked is None else dumps_strict(forked, "forked_from"),
            ),
        )

    def claim_job(
        self,
        job_id: str,
        *,
        worker: str,
        statuses: Collection[str] = CLAIMABLE_STATUSES,
        attempt: int | None = None,
    ) -> int:
        """
        Take a job to run it: if its status is in ``statuses`` (and, with ``attempt``, its
        attempt is still that one), set it ``running``, record ``worker`` (and, where the
        store keeps one, a fresh heartbeat), clear any control request, increment the
        attempt and return it.

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's status is not in ``statuses``, or its attempt moved on.
        """
        return self._claim(job_id, worker, statuses, attempt)

    def job_status(self, job_id: str) -> str:
        """
        Return the job's status (one small read).

        Raises:
            JobNotFoundError: No such job.
        """
        rows = self._read("SELECT status FROM routilux_jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise self._missing(job_id)
        return str(rows[0][0])

    def wait_settled(self, job_id: str, timeout: float | None, *, poll: float | None = None) -> str:
        """
        Wait until the job is ``paused``, ``completed``, ``failed`` or ``cancelled`` (see
        :data:`~routilux.store.SETTLED_STATUSES`) or ``timeout`` seconds pass; return its
        status then. The runner may be another process, on another host for a networked store.

        How the change is noticed depends on the database: PostgreSQL announces settled
        jobs (LISTEN/NOTIFY) and the status is read again at once, and every ``poll``
        seconds (default 1) in case a notification is missed; SQLite tells no other process
        about a change, so the status is read every ``poll`` seconds (default 0.05; one
        indexed read) -- as the runner itself reads control requests.

        Raises:
            JobNotFoundError: No such job.
        """
        every = self._STATUS_POLL if poll is None else poll
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._status_changes() as wait:
            while True:
                status = self.job_status(job_id)
                if status in SETTLED_STATUSES:
                    return status
                seconds = every
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return status
                    seconds = min(seconds, remaining)
                wait(seconds)

    def list_jobs(
        self, *, status: str | None = None, flow_id: str | None = None
    ) -> list[JobRecord]:
        """
        Return the jobs (without their state), oldest first, optionally only those with
        ``status`` and of ``flow_id``. A row that cannot be decoded is listed too, with
        :attr:`JobRecord.damaged` set.
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
            f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs{clause} "
            "ORDER BY created_at, job_id",
            tuple(params),
        )
        return [job_record(r, self._decode) for r in rows]

    def set_status(self, job_id: str, status: str) -> int:
        """
        Settle a job without running it: set its status, clear the control request,
        increment the attempt (fencing out any runner) and return the new attempt. A
        loaded job has this status (its checkpoints keep theirs).

        Raises:
            JobNotFoundError: No such job.
        """
        attempt = self._settle(job_id, status)
        if attempt is None:
            raise self._missing(job_id)
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
        if not self._put_request(job_id, request):
            raise self._missing(job_id)

    def get_control_request(self, job_id: str) -> str | None:
        """
        Return the job's pending control request, or ``None``.
        """
        rows = self._read("SELECT requested FROM routilux_jobs WHERE job_id = ?", (job_id,))
        return rows[0][0] if rows else None

    def delete_job(self, job_id: str) -> bool:
        """
        Delete a job and its checkpoints; return ``False`` when there was none. Flows are
        kept.
        """
        with self._tx(write=True) as tx:
            tx.run("DELETE FROM routilux_checkpoints WHERE job_id = ?", (job_id,))
            deleted = tx.run("DELETE FROM routilux_jobs WHERE job_id = ?", (job_id,)) > 0
        self._log.forget(job_id)
        return deleted

    def close(self) -> None:
        """
        Release the store's connections (later calls raise :class:`JobStoreError`).
        """
        raise NotImplementedError

    # -- the dialect --------------------------------------------------------------

    #: The placeholder of a JSON text parameter.
    _JSON: ClassVar[str] = "?"

    #: Seconds between two reads of a job's status in :meth:`wait_settled`.
    _STATUS_POLL: ClassVar[float]

    def _status_changes(self) -> AbstractContextManager[Callable[[float], None]]:
        # A context giving ``wait(seconds)``: return when the database tells of a change in
        # some job's status, or after ``seconds``.
        raise NotImplementedError

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # Run one query (``?`` placeholders) in a transaction of its own; return its rows.
        with self._tx(write=False) as tx:
            return tx.rows(sql, params)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        # Run one write (``?`` placeholders) in a transaction of its own; return the rowcount.
        with self._tx(write=True) as tx:
            return tx.run(sql, params)

    def _put_flow(self, flow_id: str, fingerprint: str, flow_data: Mapping[str, Any]) -> None:
        # Insert the flow version, or touch its saved_at.
        raise NotImplementedError

    def _claim(
        self, job_id: str, worker: str, statuses: Collection[str], attempt: int | None
    ) -> int:
        # The transaction of claim_job (see _check_claim).
        raise NotImplementedError

    def _settle(self, job_id: str, status: str) -> int | None:
        # The transaction of set_status: the new attempt, or None when there is no job.
        raise NotImplementedError

    def _put_request(self, job_id: str, request: str | None) -> bool:
        # Store the control request; False when there is no job.
        raise NotImplementedError

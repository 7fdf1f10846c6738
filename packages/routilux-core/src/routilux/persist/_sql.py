"""
BaseSqlJobStore: the JobStore methods SQL stores share; each dialect writes only its SQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, TypeVar

import attrs

from routilux.codec._values import dumps_strict
from routilux.exceptions import (
    ConfigurationError,
    JobNotFoundError,
    JobStoreError,
    StaleAttemptError,
)
from routilux.persist._protocols import (
    CLAIMABLE_STATUSES,
    CONTROL_REQUESTS,
    SETTLED_STATUSES,
    JobRecord,
    flow_fingerprint,
)
from routilux.persist._rows import decode_failure, job_record, missing_job


__all__ = ["BaseSqlJobStore"]

_S = TypeVar("_S", bound="BaseSqlJobStore")


class BaseSqlJobStore:
    """
    The :class:`~routilux.store.JobStore` methods over a SQL database, for store
    implementers: the checks, the errors and the plain reads are here, the dialect in a
    subclass.

    Both tables are the stores' common schema: ``routilux_flows (flow_id, fingerprint,
    flow_json, saved_at)`` and ``routilux_jobs`` with at least the columns that
    :func:`~routilux.store.sql.job_record` reads and a ``checkpoint_seq``. A subclass sets
    the class attributes ``_FULL_COLUMNS`` and ``_SUMMARY_COLUMNS`` (the job columns a full
    row and a listing select, in :func:`~routilux.store.sql.job_record`'s order, the
    listing with a NULL state), ``_STATUS_POLL`` (seconds between two status reads of
    :meth:`wait_settled`) and, when its driver returns JSON columns as text, ``_decode``;
    and it implements these hooks, each one transaction:

    - ``_read(sql, params)`` and ``_execute(sql, params)``: one query (its rows) or one
      write (its row count), written with ``?`` placeholders;
    - ``_put_flow``, ``_put_job``, ``_claim``, ``_put_checkpoint``, ``_settle`` and
      ``_put_request``: the writes of :meth:`save_flow`, :meth:`create_job`,
      :meth:`claim_job`, :meth:`save_checkpoint`, :meth:`set_status` and
      :meth:`request_control` (their comments below say what each must do; the static
      helpers ``_check_claim`` and ``_check_checkpoint`` check a claim and a checkpoint
      on the row read in their transaction, and ``_missing`` and ``_missing_flow`` give
      the protocol's errors);
    - ``_status_changes()``: a context giving ``wait(seconds)``, which returns when the
      database announces a status change or after ``seconds``;
    - :meth:`close` and, for stores other processes can open, :attr:`url`.

    :class:`~routilux.store.SqliteJobStore` is the reference dialect; routilux-postgres's
    ``PostgresJobStore`` another.

    .. versionadded:: 0.10
    """

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

    @staticmethod
    def _check_checkpoint(
        job_id: str, row: Sequence[Any] | None, attempt: int | None, seq: int | None
    ) -> bool:
        # The checks of a checkpoint on the job's ``(attempt, checkpoint_seq)`` row, read
        # (and locked) in the checkpoint's transaction, ``None`` when there is no such job:
        # raise when ``attempt`` is not the job's current one (the fencing); return False
        # when ``seq`` is not above the stored checkpoint_seq (the snapshot is older).
        if row is None:
            raise missing_job(job_id)
        current = int(row[0])
        if attempt is not None and current != attempt:
            msg = (
                f"checkpoint of job {job_id!r} refused: this runner holds attempt "
                f"{attempt}, the store is at attempt {current}"
            )
            raise StaleAttemptError(msg, job_id=job_id, attempt=attempt, current=current)
        return seq is None or seq > int(row[1])

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
        now = self._put_job(record)
        return attrs.evolve(record, created_at=now, updated_at=now)

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

    def save_checkpoint(
        self,
        job_id: str,
        snapshot: Mapping[str, Any],
        *,
        status: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """
        Replace the job's state with ``snapshot`` and its status with ``status`` (by default
        ``snapshot["status"]``), in one transaction; a settled status clears the control
        request. A snapshot whose ``checkpoint_seq`` is not above the stored one is not
        written (``False``): checkpoints are ordered.

        Raises:
            JobNotFoundError: No such job.
            StaleAttemptError: ``attempt`` is not the job's current attempt.
            SerializationError: The snapshot cannot be written as strict JSON.
        """
        new_status = status if status is not None else str(snapshot.get("status", "running"))
        seq = snapshot.get("checkpoint_seq")
        text = dumps_strict(snapshot, "state")
        return self._put_checkpoint(
            job_id, text, new_status, attempt, seq if type(seq) is int else None
        )

    def load_job(self, job_id: str) -> JobRecord:
        """
        Return the job with its last checkpoint.

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's row is damaged (see :attr:`JobRecord.damaged`); the
                message names the job, the column and the reason.
        """
        rows = self._read(
            f"SELECT {self._FULL_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (job_id,)
        )
        if not rows:
            raise self._missing(job_id)
        record = job_record(rows[0], self._decode)
        if record.damaged is not None:
            msg = f"job {job_id!r} is damaged in the store: {record.damaged}"
            raise JobStoreError(msg, job_id=job_id)
        return record

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
        increment the attempt (fencing out any runner) and return the new attempt. The
        stored state's own ``status`` is updated too, so a loaded JobState agrees.

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
        Delete a job; return ``False`` when there was none. Flows are kept.
        """
        return self._execute("DELETE FROM routilux_jobs WHERE job_id = ?", (job_id,)) > 0

    def close(self) -> None:
        """
        Release the store's connections (later calls raise :class:`JobStoreError`).
        """
        raise NotImplementedError

    # -- the dialect --------------------------------------------------------------

    #: The job columns a full row selects, in :func:`job_record`'s order.
    _FULL_COLUMNS: ClassVar[str]
    #: The same without the state (a NULL in its place).
    _SUMMARY_COLUMNS: ClassVar[str]

    @staticmethod
    def _decode(value: Any) -> Any:
        # A stored JSON column as data (the dialect's driver may have decoded it already).
        return value

    #: Seconds between two reads of a job's status in :meth:`wait_settled`.
    _STATUS_POLL: ClassVar[float]

    def _status_changes(self) -> AbstractContextManager[Callable[[float], None]]:
        # A context giving ``wait(seconds)``: return when the database tells of a change in
        # some job's status, or after ``seconds``.
        raise NotImplementedError

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # Run one query (``?`` placeholders) in a transaction of its own; return its rows.
        raise NotImplementedError

    def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        # Run one write (``?`` placeholders) in a transaction of its own; return the rowcount.
        raise NotImplementedError

    def _put_flow(self, flow_id: str, fingerprint: str, flow_data: Mapping[str, Any]) -> None:
        # Insert the flow version, or touch its saved_at.
        raise NotImplementedError

    def _put_job(self, record: JobRecord) -> float:
        # Insert the new job and return its created_at; raise the errors of create_job.
        raise NotImplementedError

    def _claim(
        self, job_id: str, worker: str, statuses: Collection[str], attempt: int | None
    ) -> int:
        # The transaction of claim_job (see _check_claim).
        raise NotImplementedError

    def _put_checkpoint(
        self, job_id: str, text: str, status: str, attempt: int | None, seq: int | None
    ) -> bool:
        # The transaction of save_checkpoint (see _check_checkpoint): write the state's JSON
        # ``text`` unless ``seq`` is given and not above the stored checkpoint_seq.
        raise NotImplementedError

    def _settle(self, job_id: str, status: str) -> int | None:
        # The transaction of set_status: the new attempt, or None when there is no job.
        raise NotImplementedError

    def _put_request(self, job_id: str, request: str | None) -> bool:
        # Store the control request; False when there is no job.
        raise NotImplementedError

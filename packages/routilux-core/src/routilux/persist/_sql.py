"""
What the SQL job stores share: the :class:`~routilux.store.JobStore` methods, their checks
and errors, and the row -> :class:`JobRecord` conversion; each dialect writes only its SQL.
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


__all__ = ["BaseSqlJobStore", "job_record", "missing_job"]

_S = TypeVar("_S", bound="BaseSqlJobStore")


def missing_job(job_id: str) -> JobNotFoundError:
    """
    Return the error of a job the store does not hold.
    """
    msg = f"no job {job_id!r} in the store"
    return JobNotFoundError(msg, job_id=job_id)


def _reason(exc: BaseException) -> str:
    # One line saying why a stored value could not be decoded.
    if isinstance(exc, RecursionError):
        return "not valid JSON (nested too deeply)"
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"not valid JSON ({text})" if isinstance(exc, ValueError) else text


def job_record(row: Sequence[Any], decode: Callable[[Any], Any] = lambda v: v) -> JobRecord:
    """
    Return the JobRecord of a job row selected with the stores' column order: ``job_id,
    flow_id, fingerprint, status, entry_routine_id, entry_params, options, state, requested,
    attempt, worker, created_at, updated_at``.

    A row that cannot be decoded (a column that is not valid JSON, not a JSON object, or a
    number column that holds no number) is returned all the same, with empty values in
    place of what could not be read and :attr:`JobRecord.damaged` saying which column and
    why (the first such column).

    Args:
        row: The row.
        decode: Turns a stored JSON column into data (``json.loads`` for text columns).

    .. versionchanged:: 0.10
       A damaged row is returned with ``damaged`` set instead of raising.
    """
    problems: list[str] = []

    def json_object(index: int, column: str, nullable: bool = False) -> Any:
        value = row[index]
        if value is None and nullable:
            return None
        try:
            data = decode(value)
        except (ValueError, TypeError, RecursionError) as exc:
            problems.append(f"{column}: {_reason(exc)}")
            return None if nullable else {}
        if data is None and not nullable:
            return {}
        if not isinstance(data, dict):
            problems.append(f"{column}: expected a JSON object, got {type(data).__name__}")
            return None if nullable else {}
        return data

    def number(index: int, column: str, kind: Callable[[Any], Any]) -> Any:
        try:
            return kind(row[index])
        except (ValueError, TypeError, OverflowError):
            what = "an integer" if kind is int else "a number"
            problems.append(f"{column}: expected {what}, got {str(row[index])[:50]!r}")
            return kind(0)

    entry_params = json_object(5, "entry_params")
    options = json_object(6, "options")
    state = json_object(7, "state_json", nullable=True)
    attempt = number(9, "attempt", int)
    created_at = number(11, "created_at", float)
    updated_at = number(12, "updated_at", float)
    return JobRecord(
        job_id=row[0],
        flow_id=row[1],
        fingerprint=row[2],
        status=row[3],
        entry_routine_id=row[4],
        entry_params=dict(entry_params),
        options=dict(options),
        state=state,
        requested=row[8],
        attempt=attempt,
        worker=row[10],
        created_at=created_at,
        updated_at=updated_at,
        damaged=problems[0] if problems else None,
    )


class BaseSqlJobStore:
    """
    The :class:`~routilux.store.JobStore` methods over a SQL database: the checks, the errors
    and the plain reads are here (written with ``?`` placeholders), the dialect's column
    lists, ``_read`` and ``_execute`` and its writes in the subclass's hooks (``_put_flow``,
    ``_put_job``, ``_claim``, ``_put_checkpoint``, ``_settle`` and ``_put_request``). Every
    hook is one transaction.
    """

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks shared by the hooks -------------------------------------------------

    @staticmethod
    def _missing(job_id: str) -> JobNotFoundError:
        return missing_job(job_id)

    @staticmethod
    def _missing_flow(flow_id: str, fingerprint: str | None, job_id: str = "") -> JobNotFoundError:
        version = f" version {fingerprint[:12]}" if fingerprint else ""
        msg = f"no flow {flow_id!r}{version} in the store"
        return JobNotFoundError(msg, job_id=job_id)

    @staticmethod
    def _check_claimable(
        job_id: str, status: str, holder: str | None, statuses: Collection[str]
    ) -> None:
        # Raise when a job in ``status`` (claimed last by ``holder``) cannot be claimed.
        if status not in statuses:
            by = f" by {holder}" if status == "running" and holder else ""
            msg = f"job {job_id!r} is {status}{by}; it cannot be claimed"
            raise JobStoreError(msg, job_id=job_id)

    @staticmethod
    def _check_claim_attempt(job_id: str, attempt: int | None, current: int) -> None:
        # The compare-and-set of a claim: the job's attempt is still the one read.
        if attempt is not None and current != attempt:
            msg = (
                f"job {job_id!r} was claimed by another runner since it was read "
                f"(attempt {attempt}, now {current}); it cannot be claimed"
            )
            raise JobStoreError(msg, job_id=job_id)

    @staticmethod
    def _check_attempt(job_id: str, attempt: int | None, current: int) -> None:
        # The fencing check of a checkpoint: ``attempt`` must be the job's current one.
        if attempt is not None and current != attempt:
            msg = (
                f"checkpoint of job {job_id!r} refused: this runner holds attempt "
                f"{attempt}, the store is at attempt {current}"
            )
            raise StaleAttemptError(msg, job_id=job_id, attempt=attempt, current=current)

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
            why = _reason(exc)
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
    ) -> JobRecord:
        """
        Create a ``pending`` job of a stored flow version, with no state yet.

        Raises:
            JobNotFoundError: The flow version is not stored.
            JobStoreError: A job with this id exists already.
        """
        return self._create_job(
            job_id, flow_id, fingerprint, "pending", entry_routine_id, entry_params, options
        )

    def _create_job(
        self,
        job_id: str,
        flow_id: str,
        fingerprint: str,
        status: str,
        entry_routine_id: str,
        entry_params: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
    ) -> JobRecord:
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
        # The transaction of claim_job (see _check_claimable and _check_claim_attempt).
        raise NotImplementedError

    def _put_checkpoint(
        self, job_id: str, text: str, status: str, attempt: int | None, seq: int | None
    ) -> bool:
        # The transaction of save_checkpoint (see _check_attempt): write the state's JSON
        # ``text`` unless ``seq`` is given and not above the stored checkpoint_seq.
        raise NotImplementedError

    def _settle(self, job_id: str, status: str) -> int | None:
        # The transaction of set_status: the new attempt, or None when there is no job.
        raise NotImplementedError

    def _put_request(self, job_id: str, request: str | None) -> bool:
        # Store the control request; False when there is no job.
        raise NotImplementedError

"""
The checkpoint methods of the SQL stores: saving a checkpoint to the job's log, loading a
job at its last or any kept checkpoint, listing and forking (see ``_log``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import attrs

from routilux.codec._deltas import JOB_STATE_DELTA_FORMAT, VERSION, is_delta
from routilux.codec._values import dumps_strict
from routilux.exceptions import JobNotFoundError, JobStoreError, StaleAttemptError
from routilux.persist._log import CheckpointLog, Tx
from routilux.persist._protocols import SETTLED_STATUSES, CheckpointInfo, JobRecord
from routilux.persist._rows import job_record, missing_job


__all__ = ["SqlCheckpoints"]


class SqlCheckpoints:
    """
    The checkpoint methods of :class:`~routilux.store.sql.BaseSqlJobStore` (which see for
    the dialect's hooks they use).
    """

    #: The checkpoint log (set by the dialect's constructor).
    _log: CheckpointLog
    #: The job columns a row selects, in :func:`~routilux.store.sql.job_record`'s order.
    _SUMMARY_COLUMNS: ClassVar[str]
    #: What a query of one job row appends to lock it against writers for the
    #: transaction (``" FOR UPDATE"``), and against writers but not readers
    #: (``" FOR SHARE"``); empty where a transaction locks the whole database.
    _LOCK_ROW: ClassVar[str] = ""
    _SHARE_ROW: ClassVar[str] = ""
    #: The SQL expression of the current time, as the ``updated_at`` column holds it.
    _NOW: ClassVar[str]
    #: More assignments of a checkpoint's UPDATE of the job row (``", heartbeat_at =
    #: now()"``).
    _CHECKPOINT_EXTRA: ClassVar[str] = ""

    def _tx(self, *, write: bool) -> AbstractContextManager[Tx]:
        # One transaction (a write transaction when ``write``).
        raise NotImplementedError

    def _checkpointed(self, tx: Tx, job_id: str, status: str) -> None:
        # In a checkpoint's transaction, after it is written (a dialect may announce it).
        return None

    @staticmethod
    def _decode(value: Any) -> Any:
        # A stored JSON column as data (the dialect's driver may have decoded it already).
        return value

    def _insert_job(self, tx: Tx, record: JobRecord, checkpoint_seq: int = 0) -> None:
        # Insert a job row (see BaseSqlJobStore).
        raise NotImplementedError

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

    def save_checkpoint(
        self,
        job_id: str,
        snapshot: Mapping[str, Any],
        *,
        status: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """
        Add ``snapshot`` (a whole job, or a delta from the stored checkpoint: see
        ``Flow.execute(checkpoint_deltas=True)``) to the job's checkpoints and set its
        status to ``status`` (by default the snapshot's), in one transaction; a settled
        status clears the control request. A snapshot whose ``checkpoint_seq`` is not above
        the stored one, or a delta from another checkpoint than the stored one, is not
        written (``False``): checkpoints are ordered.

        Raises:
            JobNotFoundError: No such job.
            StaleAttemptError: ``attempt`` is not the job's current attempt.
            SerializationError: The snapshot cannot be written as strict JSON.
        """
        named = snapshot.get("set", {}).get("status") if is_delta(snapshot) else None
        new_status = status or str(named or snapshot.get("status") or "running")
        seq = snapshot.get("checkpoint_seq")
        with self._tx(write=True) as tx:
            rows = tx.rows(
                "SELECT attempt, checkpoint_seq, full_seq, full_bytes, delta_bytes, last_crc "
                f"FROM routilux_jobs WHERE job_id = ?{self._LOCK_ROW}",
                (job_id,),
            )
            row = rows[0] if rows else None
            if not self._check_checkpoint(job_id, row, attempt, seq if type(seq) is int else None):
                return False  # older than the stored checkpoint
            assert row is not None  # checked
            if type(seq) is not int:  # a document without a sequence number: the next
                seq = int(row[1]) + 1
                snapshot = {**snapshot, "checkpoint_seq": seq}
            head = self._log.save(tx, job_id, snapshot, row[1:])
            if head is None:
                return False  # a delta from another checkpoint
            settled = new_status in SETTLED_STATUSES
            tx.run(
                "UPDATE routilux_jobs SET status = ?, checkpoint_seq = ?, full_seq = ?, "
                "full_bytes = ?, delta_bytes = ?, last_crc = ?, "
                f"updated_at = {self._NOW}{self._CHECKPOINT_EXTRA}, "
                "requested = CASE WHEN ? THEN NULL ELSE requested END WHERE job_id = ?",
                (new_status, seq, *head, settled, job_id),
            )
            self._checkpointed(tx, job_id, new_status)
        return True

    def load_job(self, job_id: str) -> JobRecord:
        """
        Return the job with its last checkpoint (its ``status`` the job's).

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's row or checkpoint is damaged (see
                :attr:`JobRecord.damaged`); the message names the job, the column or
                checkpoint, and the reason.
        """
        with self._tx(write=False) as tx:
            rows = tx.rows(
                f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs WHERE job_id = ?"
                f"{self._SHARE_ROW}",
                (job_id,),
            )
            if not rows:
                raise missing_job(job_id)
            record = job_record(rows[0], self._decode)
            if record.damaged is not None:
                msg = f"job {job_id!r} is damaged in the store: {record.damaged}"
                raise JobStoreError(msg, job_id=job_id)
            state = self._log.state(tx, job_id)
        if state is not None:
            state["status"] = record.status
        return attrs.evolve(record, state=state)

    def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """
        Return the job's checkpoints the store keeps, oldest first (see
        :class:`~routilux.store.CheckpointInfo`; the retention is the store's
        ``keep_checkpoints``).

        Raises:
            JobNotFoundError: No such job.

        .. versionadded:: 0.10
        """
        with self._tx(write=False) as tx:
            return self._log.infos(tx, job_id, self._first_seq(tx, job_id))

    def load_checkpoint(self, job_id: str, seq: int) -> dict[str, Any]:
        """
        Return the job as it was at checkpoint ``seq`` (a ``routilux.job_state``
        document, rebuilt from the log: exactly what the job held then).

        Raises:
            JobNotFoundError: No such job, or the store does not keep that checkpoint.
            JobStoreError: A checkpoint is damaged.

        .. versionadded:: 0.10
        """
        with self._tx(write=False) as tx:
            self._check_kept(tx, job_id, seq, self._first_seq(tx, job_id))
            state = self._log.state(tx, job_id, seq)
        if state is None:
            msg = (
                f"checkpoint {seq} of job {job_id!r} is damaged in the store: no whole "
                "checkpoint precedes it"
            )
            raise JobStoreError(msg, job_id=job_id)
        return state

    def _first_seq(self, tx: Tx, job_id: str) -> int:
        # The job's first own checkpoint: a fork's log starts with the rows of its origin
        # its first checkpoint is rebuilt from (see CheckpointLog.fork), not its own.
        rows = tx.rows(
            f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (job_id,)
        )
        if not rows:
            raise missing_job(job_id)
        return _first_own(job_record(rows[0], self._decode))

    def _check_kept(self, tx: Tx, job_id: str, seq: int, first: int) -> None:
        # Raise unless the log keeps the job's own checkpoint ``seq``.
        if seq >= first and tx.rows(
            "SELECT 1 FROM routilux_checkpoints WHERE job_id = ? AND seq = ?", (job_id, seq)
        ):
            return
        bounds = tx.rows(
            "SELECT min(seq), max(seq) FROM routilux_checkpoints WHERE job_id = ? AND seq >= ?",
            (job_id, first),
        )
        low, high = bounds[0] if bounds else (None, None)
        held = "none" if low is None else f"{low} to {high}"
        msg = f"the store keeps no checkpoint {seq} of job {job_id!r} (it keeps {held})"
        raise JobNotFoundError(msg, job_id=job_id)

    def fork(
        self,
        job_id: str,
        *,
        at: int | None = None,
        new_job_id: str | None = None,
        shared_data: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """
        Make a new ``paused`` job from checkpoint ``at`` of ``job_id`` (by default its
        newest), in one transaction: the same flow version, entry and options, the state
        the job had then (with ``shared_data`` keys set over its shared data), its own id
        (``new_job_id`` or a new one) and a ``forked_from`` record, in
        :attr:`JobRecord.forked_from` and in its metadata. The original is untouched. Run
        the fork with :func:`~routilux.store.run_job` like any paused job.

        The fork's first checkpoint is ``at + 1``: what it changed from checkpoint ``at``,
        which its log holds as its origin stored it (nothing is encoded again, so a fork
        costs about one load of that checkpoint). Its own checkpoints, which
        :meth:`checkpoints` lists and :meth:`load_checkpoint` loads, start there.

        Raises:
            JobNotFoundError: No such job, or the store does not keep that checkpoint.
            JobStoreError: A job ``new_job_id`` exists already.
            SerializationError: ``shared_data`` cannot be written as strict JSON.

        .. versionadded:: 0.10
        """
        fork_id = new_job_id or str(uuid.uuid4())
        with self._tx(write=True) as tx:
            rows = tx.rows(
                f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (job_id,)
            )
            if not rows:
                raise missing_job(job_id)
            source = job_record(rows[0], self._decode)
            if at is None:
                at = source.checkpoint_seq
                if not at:
                    msg = f"job {job_id!r} has no checkpoint to fork"
                    raise JobNotFoundError(msg, job_id=job_id)
            self._check_kept(tx, job_id, at, _first_own(source))
            if tx.rows("SELECT 1 FROM routilux_jobs WHERE job_id = ?", (fork_id,)):
                msg = f"a job {fork_id!r} exists already in the store"
                raise JobStoreError(msg, job_id=fork_id)
            origin = {"job_id": job_id, "seq": at}
            record = attrs.evolve(source, job_id=fork_id, status="paused", forked_from=origin)
            delta = _fork_delta(fork_id, origin, at, shared_data)
            self._insert_job(tx, record, at + 1)
            state, head = self._log.fork(tx, job_id, at, fork_id, delta)
            tx.run(
                "UPDATE routilux_jobs SET full_seq = ?, full_bytes = ?, delta_bytes = ?, "
                "last_crc = ? WHERE job_id = ?",
                (*head, fork_id),
            )
            row = tx.rows(
                f"SELECT {self._SUMMARY_COLUMNS} FROM routilux_jobs WHERE job_id = ?", (fork_id,)
            )[0]
        return attrs.evolve(job_record(row, self._decode), state=state)


def _first_own(record: JobRecord) -> int:
    # The first checkpoint of the job's own (see SqlCheckpoints._first_seq).
    forked = record.forked_from
    seq = forked.get("seq") if forked else None
    return seq + 1 if type(seq) is int else 0


def _fork_delta(
    fork_id: str, origin: dict[str, Any], at: int, shared_data: Mapping[str, Any] | None
) -> dict[str, Any]:
    # The first checkpoint of a fork: a delta from checkpoint ``at`` of its origin.
    shared = dict(shared_data or {})
    dumps_strict(shared, "shared_data")  # a value that cannot be written names its key
    return {
        "format": JOB_STATE_DELTA_FORMAT,
        "version": VERSION,
        "base_seq": at,
        "checkpoint_seq": at + 1,
        "set": {"job_id": fork_id, "status": "paused"},
        "keys": {
            "metadata": {"set": {"forked_from": origin}, "delete": []},
            "shared_data": {"set": shared, "delete": []},
        },
    }

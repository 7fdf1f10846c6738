"""
The engine-neutral seams of job persistence: the JobStore and JobExecutor protocols.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs


if TYPE_CHECKING:
    from routilux.model._job_state import JobState


__all__ = [
    "CLAIMABLE_STATUSES",
    "CONTROL_REQUESTS",
    "SETTLED_STATUSES",
    "CheckpointInfo",
    "JobExecutor",
    "JobHandle",
    "JobRecord",
    "JobStore",
    "default_worker_id",
    "flow_fingerprint",
]

CLAIMABLE_STATUSES: frozenset[str] = frozenset({"pending", "queued", "paused"})
"""The statuses :meth:`JobStore.claim_job` accepts by default (``running`` only on take-over)."""

SETTLED_STATUSES: frozenset[str] = frozenset({"paused", "completed", "failed", "cancelled"})
"""The statuses a job rests in when nothing of it runs; saving one clears the control request."""

CONTROL_REQUESTS: frozenset[str] = frozenset({"pause", "cancel"})
"""The control requests a store carries to a running job."""


def flow_fingerprint(flow_data: Mapping[str, Any]) -> str:
    """
    Return the fingerprint of a serialized flow: the SHA-256 of its canonical JSON.

    Two documents that differ only in key order or whitespace have the same fingerprint;
    any change to a routine, its config or a connection gives another.
    """
    text = json.dumps(flow_data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_worker_id() -> str:
    """
    Return ``"<host>:<pid>"``, the worker id a runner of this process records on a job.
    """
    return f"{socket.gethostname()}:{os.getpid()}"


@attrs.frozen(kw_only=True)
class JobRecord:
    """
    One job as a store holds it.

    ``state`` is the last checkpoint (``JobState.serialize()`` output, queued activations
    in ``pending_tasks``, its ``status`` the job's), or ``None`` when the job has not been
    checkpointed yet: then running it starts from the entry routine.
    """

    #: The job's id (also the ``job_id`` of its JobState).
    job_id: str
    #: The id of the job's flow.
    flow_id: str
    #: The fingerprint of the flow version the job runs (see :func:`flow_fingerprint`).
    fingerprint: str
    #: The job's status: ``pending``, ``running``, ``paused``, ``completed``, ``failed``
    #: or ``cancelled`` (the store's view; authoritative over ``state["status"]``).
    status: str
    #: The routine whose ``trigger`` slot starts the job.
    entry_routine_id: str
    #: The data given to the trigger slot.
    entry_params: dict[str, Any] = attrs.field(factory=dict)
    #: Run options kept for every later run of the job (``checkpoint_every``, ``strategy``).
    options: dict[str, Any] = attrs.field(factory=dict)
    #: The last checkpoint, or ``None`` (not loaded by :meth:`JobStore.list_jobs`).
    state: dict[str, Any] | None = None
    #: A pending control request: ``"pause"``, ``"cancel"`` or ``None``.
    requested: str | None = None
    #: The fencing token: incremented by every claim.
    attempt: int = 0
    #: The worker that claimed the job last (``"<host>:<pid>"``), or ``None``.
    worker: str | None = None
    #: When the job was created (seconds since the epoch).
    created_at: float = 0.0
    #: When the job row last changed (seconds since the epoch).
    updated_at: float = 0.0
    #: ``None``, or when the row cannot be decoded, a one-line reason naming the column
    #: (``"entry_params: not valid JSON (...)"``); the values that could not be read are
    #: empty. Only :meth:`JobStore.list_jobs` returns such records (``load_job`` raises).
    #:
    #: .. versionadded:: 0.10
    damaged: str | None = None
    #: The sequence number of the job's last checkpoint (0 before any).
    #:
    #: .. versionadded:: 0.10
    checkpoint_seq: int = 0
    #: For a fork (see :meth:`JobStore.fork`), ``{"job_id": ..., "seq": ...}``: the job and
    #: checkpoint it was made from; else ``None``.
    #:
    #: .. versionadded:: 0.10
    forked_from: dict[str, Any] | None = None


@attrs.frozen
class CheckpointInfo:
    """
    One checkpoint of a job in a store's log (see :meth:`JobStore.checkpoints`).

    .. versionadded:: 0.10
    """

    #: The checkpoint's sequence number (``JobState.checkpoint_seq``).
    seq: int
    #: The job's status in that checkpoint.
    status: str
    #: ``"full"`` (the whole job) or ``"delta"`` (what changed since the one before).
    kind: str
    #: The size of the checkpoint as JSON, in bytes (before compression).
    size: int
    #: When it was written (seconds since the epoch).
    created_at: float


@runtime_checkable
class JobStore(Protocol):
    """
    Where flows and jobs live between runs, possibly shared by several processes or hosts.

    A store keeps each flow version by ``(flow_id, fingerprint)`` and each job as one row
    with its checkpoints, newer checkpoints only (ordered by the snapshot's
    ``checkpoint_seq``): the last one is the job's state, the earlier ones (as many as
    the store's retention keeps) can be loaded and forked. Everything a store writes is
    strict JSON (no NaN).
    Every method is one atomic transaction, and every method may be called from any
    thread. :class:`~routilux.store.SqliteJobStore` is the embedded implementation; a
    networked store (routilux-postgres's ``PostgresJobStore``) implements the same methods,
    and :func:`~routilux.store.open_store` opens either from its :attr:`url`.

    .. versionadded:: 0.10
    """

    @property
    def url(self) -> str | None:
        """
        The URL :func:`~routilux.store.open_store` opens this store from, in any process
        (``sqlite:/abs/path/jobs.db``, ``postgresql://host/db``), or ``None`` when no other
        process can open it (a private in-memory database). Executors that run jobs in
        other processes (Dask) re-open the store there from it.
        """
        ...

    def save_flow(self, flow_data: Mapping[str, Any]) -> str:
        """
        Store a serialized flow (``Flow.serialize()`` output) and return its fingerprint.
        Saving the same document again is harmless.
        """
        ...

    def load_flow(self, flow_id: str, fingerprint: str | None = None) -> dict[str, Any]:
        """
        Return a stored flow document: the version with ``fingerprint``, or the version
        saved last.

        Raises:
            JobNotFoundError: No such flow (version) is stored.
        """
        ...

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
        ...

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
        attempt is still that one), set it ``running``, record ``worker``, clear any
        control request, increment the attempt and return it: one compare-and-set. Pass
        ``statuses`` with ``"running"`` in it only to take over from a runner known to be dead.

        Args:
            attempt: The attempt read with the state the caller will run: the claim is
                refused when another runner claimed the job since (so two runners never
                run the same state).

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's status is not in ``statuses``, or its attempt moved on.
        """
        ...

    def save_checkpoint(
        self,
        job_id: str,
        snapshot: Mapping[str, Any],
        *,
        status: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """
        Add ``snapshot`` to the job's checkpoints and set its status to ``status`` (by
        default the snapshot's), in one transaction. A settled status (see
        :data:`SETTLED_STATUSES`) clears the control request. ``snapshot`` is a whole job
        document or a delta (``routilux.job_state_delta``, see
        :func:`~routilux.serialization.apply_delta`) from the stored checkpoint, as
        ``Flow.execute(checkpoint_deltas=True)`` hands them.

        Checkpoints are ordered: a snapshot that carries a ``checkpoint_seq`` (the engine's
        do) not above the stored one is older than what the store holds, and is not
        written (``False``), nor is a delta from another checkpoint than the stored one:
        the last write of a finished job is its final state.

        Args:
            attempt: The fencing token of the caller (from :meth:`claim_job`); the save is
                refused when the job was claimed again since. ``None`` skips the check.

        Returns:
            ``True`` when written, ``False`` when the store holds a newer checkpoint.

        Raises:
            JobNotFoundError: No such job.
            StaleAttemptError: ``attempt`` is not the job's current attempt.
            SerializationError: The snapshot holds a value strict JSON cannot write (NaN,
                Infinity, an integer too large); the message gives its path.
        """
        ...

    def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """
        Return the job's checkpoints the store keeps, oldest first.

        Raises:
            JobNotFoundError: No such job.

        .. versionadded:: 0.10
        """
        ...

    def load_checkpoint(self, job_id: str, seq: int) -> dict[str, Any]:
        """
        Return the job as it was at checkpoint ``seq``: a ``routilux.job_state`` document.

        Raises:
            JobNotFoundError: No such job, or the store does not keep that checkpoint.

        .. versionadded:: 0.10
        """
        ...

    def fork(
        self,
        job_id: str,
        *,
        at: int | None = None,
        new_job_id: str | None = None,
        shared_data: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """
        Make a new ``paused`` job, with its own id, from checkpoint ``at`` (by default the
        newest) of ``job_id``, which is untouched; return it. ``shared_data`` keys are set
        over the fork's shared data; :attr:`JobRecord.forked_from` names the origin. The
        fork's own checkpoints start at ``at + 1``.

        Raises:
            JobNotFoundError: No such job, or the store does not keep that checkpoint.
            JobStoreError: A job ``new_job_id`` exists already.

        .. versionadded:: 0.10
        """
        ...

    def load_job(self, job_id: str) -> JobRecord:
        """
        Return the job with its last checkpoint.

        Raises:
            JobNotFoundError: No such job.
            JobStoreError: The job's row cannot be decoded; the message names the job, the
                column and the reason.
        """
        ...

    def wait_settled(self, job_id: str, timeout: float | None, *, poll: float | None = None) -> str:
        """
        Wait until the job is ``paused``, ``completed``, ``failed`` or ``cancelled`` (see
        :data:`SETTLED_STATUSES`) or ``timeout`` seconds pass; return its status then. The
        runner may be another process, on another host for a networked store; ``poll`` is
        the most seconds between two reads of the status (the store's default when ``None``).

        Raises:
            JobNotFoundError: No such job.
        """
        ...

    def list_jobs(
        self, *, status: str | None = None, flow_id: str | None = None
    ) -> list[JobRecord]:
        """
        Return the jobs (without their state), oldest first, optionally only those with
        ``status`` and of ``flow_id``. A row that cannot be decoded is listed with
        :attr:`JobRecord.damaged` set.
        """
        ...

    def set_status(self, job_id: str, status: str) -> int:
        """
        Settle a job without running it (cancel a paused job, fail a job that was given up):
        set its status, clear the control request, increment the attempt (so a runner that
        still holds the job can no longer checkpoint it) and return the new attempt.

        Raises:
            JobNotFoundError: No such job.
        """
        ...

    def request_control(self, job_id: str, request: str | None) -> None:
        """
        Ask the job's runner to ``"pause"`` or ``"cancel"`` it at its next activation
        boundary (``None`` withdraws the request).

        Raises:
            JobNotFoundError: No such job.
            ConfigurationError: ``request`` is not ``"pause"``, ``"cancel"`` or ``None``.
        """
        ...

    def get_control_request(self, job_id: str) -> str | None:
        """
        Return the job's pending control request (cheap: runners poll it).
        """
        ...

    def delete_job(self, job_id: str) -> bool:
        """
        Delete a job; return ``False`` when there was none. Flows are kept.
        """
        ...

    def close(self) -> None:
        """
        Release the store's connections.
        """
        ...


@runtime_checkable
class JobHandle(Protocol):
    """
    A job handed to a :class:`JobExecutor`, seen from the submitting side.

    .. versionadded:: 0.10
    """

    @property
    def job_id(self) -> str:
        """
        The job's id in the store.
        """
        ...

    def status(self) -> str:
        """
        Return the job's status as the store has it now.
        """
        ...

    def state(self) -> JobState:
        """
        Return the job's last checkpointed JobState.
        """
        ...

    def pause(self) -> None:
        """
        Ask the job to pause at its next activation boundary (does not wait).
        """
        ...

    def resume(self) -> None:
        """
        Run a paused job again, on whatever worker the executor picks.
        """
        ...

    def cancel(self) -> None:
        """
        Cancel the job: a queued or paused job at once, a running one at its next boundary.
        """
        ...

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the job rests (paused, completed, failed or cancelled) or ``timeout``
        passes, and return its JobState as stored then.
        """
        ...


@runtime_checkable
class JobExecutor(Protocol):
    """
    Runs whole jobs somewhere (threads of this process, a PostgreSQL queue, a Dask cluster).

    A job is first written to a :class:`JobStore` (see :func:`~routilux.store.create_job`);
    the executor only ever carries its id, and the runner calls
    :func:`~routilux.store.run_job` on it. Nothing but the id and the store travel.

    .. versionadded:: 0.10
    """

    def submit_job(self, job_id: str) -> JobHandle:
        """
        Arrange for ``run_job(job_id, store)`` to run (or resume) the stored job; return at once.
        """
        ...

    def shutdown(self, wait: bool = True) -> None:
        """
        Stop accepting jobs; with ``wait``, wait for the submitted ones to rest.
        """
        ...

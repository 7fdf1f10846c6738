"""
PostgresBackend: jobs queued with procrastinate and run by ``routilux worker`` processes on
any number of machines, their state in a :class:`PostgresJobStore` of the same database.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import procrastinate
import procrastinate.sql
import procrastinate.utils
import psycopg
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job, Status

from routilux.engine._flow import Flow
from routilux.exceptions import (
    ConfigurationError,
    InvalidStateError,
    JobNotFoundError,
    StaleAttemptError,
)
from routilux.persist._runner import BaseJobHandle, run_options
from routilux.postgres._control import ControlHub, HubControl
from routilux.postgres._schema import migrate
from routilux.postgres._store import PostgresJobStore
from routilux.store import (
    create_job,
    default_worker_id,
    run_job,
)


if TYPE_CHECKING:
    from procrastinate.app import WorkerOptions

    from routilux.model._job_state import JobState


__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_REAP_EVERY",
    "RECOVERY_PRIORITY",
    "RUN_TASK",
    "PostgresBackend",
    "PostgresJobHandle",
    "job_lock",
]

RUN_TASK = "routilux.run_job"
"""The procrastinate task that runs one job (its only argument is ``job_id``)."""

DEFAULT_QUEUE = "routilux"
"""The procrastinate queue routilux jobs go to by default."""

DEFAULT_REAP_EVERY = 10.0
"""Seconds between two runs of a worker's reaper, by default."""

RECOVERY_PRIORITY = 10
"""
The procrastinate priority of a job queued again because its worker died or stopped: it
goes ahead of the jobs waiting for their first run (priority 0), so a backlog never delays
the recovery of a job that was already running.
"""

_LOCK_PREFIX = "routilux:"

_REAP_LOCK_KEY = 0x526F757452656170  # "RoutReap": one worker's reaper at a time

_log = logging.getLogger("routilux.postgres")


def job_lock(job_id: str) -> str:
    """
    Return the procrastinate ``lock`` and ``queueing_lock`` of a job's queue entries: at
    most one queued and one running execution per routilux job.
    """
    return f"{_LOCK_PREFIX}{job_id}"


class _ClaimedStore(PostgresJobStore):
    """
    The store as :func:`run_job` sees it inside a worker: the job was claimed already (only
    from ``queued``), so ``claim_job`` hands back that attempt; a pause caused by the worker
    shutting down is saved as ``queued``, so the job goes back to the queue, not to a person.
    It runs its transactions on the worker's store, and leaves it open.
    """

    def __init__(self, store: PostgresJobStore, attempt: int, control: HubControl) -> None:
        # Not PostgresJobStore.__init__: the connections are the worker store's.
        self.dsn = store.dsn
        self._store = store
        self._attempt = attempt
        self._control = control

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        with self._store._conn() as conn:
            yield conn

    def _claim(
        self, job_id: str, worker: str, statuses: Collection[str], attempt: int | None
    ) -> int:
        return self._attempt

    def _put_checkpoint(
        self, job_id: str, text: str, status: str, attempt: int | None, seq: int | None
    ) -> bool:
        if status == "paused" and self._control.paused_for_shutdown:
            status = "queued"
        return super()._put_checkpoint(job_id, text, status, attempt, seq)

    def close(self) -> None:
        """The worker's store outlives the run."""


class PostgresJobHandle(BaseJobHandle):
    """
    A job queued on a :class:`PostgresBackend`, seen from any process that can reach the
    database (not only the one that submitted it): a :class:`~routilux.store.JobHandle`.
    """

    _kind = "PostgresJobHandle"

    def __init__(self, backend: PostgresBackend, job_id: str) -> None:
        super().__init__(job_id)
        self._backend = backend

    def status(self) -> str:
        """
        Return the job's status now: ``queued``, ``running``, ``paused``, ``completed``,
        ``failed`` or ``cancelled``.
        """
        return self._backend.store.job_status(self._job_id)

    def state(self) -> JobState:
        """
        Return the job's last checkpointed JobState (its routines must be registered here).
        """
        return self._stored_state(self._backend.store)

    def pause(self) -> None:
        """
        Pause the job: a queued one at once (it leaves the queue), a running one at its next
        activation boundary (the request reaches its worker through ``NOTIFY`` within a
        second). Does not wait; :meth:`wait` does.
        """
        store = self._backend.store
        old = store.transition(self._job_id, ("pending", "queued"), "paused")
        if old in ("pending", "queued"):
            self._backend._cancel_queued(self._job_id)
        elif old == "running":
            store.request_control(self._job_id, "pause")

    def resume(self) -> None:
        """
        Queue the paused job again; any worker continues it from its checkpoint.

        Raises:
            InvalidStateError: The job is not paused (a second resume finds it queued).
        """
        old = self._backend.store.transition(self._job_id, ("paused",), "queued")
        if old != "paused":
            msg = f"job {self._job_id!r} is {old}; only a paused job can be resumed"
            raise InvalidStateError(msg)
        self._backend._defer(self._job_id)

    def cancel(self) -> None:
        """
        Cancel the job: a queued or paused one at once (it never runs again), a running one
        at its next activation boundary.
        """
        old = self._backend.store.cancel_or_request(self._job_id)
        if old in ("pending", "queued", "paused"):
            self._backend._cancel_queued(self._job_id)
        elif old == "running":
            self._backend._abort_running(self._job_id)

    def wait(self, timeout: float | None = None) -> JobState:
        """
        Wait until the job rests (paused, completed, failed or cancelled) or ``timeout``
        passes; return its JobState as stored then.
        """
        self._backend.store.wait_settled(self._job_id, timeout)
        return self.state()


class PostgresBackend:
    """
    Run whole jobs on ``routilux worker`` processes anywhere, through one PostgreSQL
    database: the job rows (:class:`PostgresJobStore`) and procrastinate's queue live side by
    side, so there is one service to run and back up.

    ``flow.submit(entry, params, backend=backend)`` stores the flow and a ``queued`` job,
    then defers the procrastinate task :data:`RUN_TASK` with ``lock`` and ``queueing_lock``
    set to the job id (one queued and one running execution per job). A worker claims the job
    (the attempt, its fencing token, goes up), runs or resumes it with
    :func:`~routilux.store.run_job` and checkpoints it after every activation by default.

    Args:
        dsn: The database (``postgresql://user@host/db``).
        queue: The procrastinate queue of the jobs.
        stall_timeout: Seconds without a heartbeat after which the reaper takes a running
            job from its worker (the heartbeat is written every ``heartbeat`` seconds).
        max_attempts: Runs a job gets in all when its workers keep dying; then it fails.
        heartbeat: Seconds between a worker's heartbeats and control polls.

    .. versionadded:: 0.10
    """

    def __init__(
        self,
        dsn: str,
        *,
        queue: str = DEFAULT_QUEUE,
        stall_timeout: float = 30.0,
        max_attempts: int = 3,
        heartbeat: float = 1.0,
    ) -> None:
        if stall_timeout <= heartbeat:
            msg = f"stall_timeout ({stall_timeout}) must be longer than heartbeat ({heartbeat})"
            raise ConfigurationError(msg, name="stall_timeout", value=stall_timeout)
        if max_attempts < 1:
            msg = f"max_attempts must be at least 1, got {max_attempts}"
            raise ConfigurationError(msg, name="max_attempts", value=max_attempts)
        #: The database.
        self.dsn = dsn
        #: The procrastinate queue of the jobs.
        self.queue = queue
        #: Seconds without heartbeat before a running job counts as stalled.
        self.stall_timeout = stall_timeout
        #: Runs a job gets at most when its workers die.
        self.max_attempts = max_attempts
        #: Seconds between heartbeats (and control polls) of a worker.
        self.heartbeat = heartbeat
        #: This process's worker id, recorded on the jobs it claims.
        self.worker_id = default_worker_id()
        self._lock = threading.RLock()
        self._store: PostgresJobStore | None = None
        self._app: procrastinate.App | None = None
        self._opened = False
        self._worker_mode = False
        self._hub: ControlHub | None = None

    def __repr__(self) -> str:
        return f"PostgresBackend(queue={self.queue!r})"

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pieces -------------------------------------------------------------------

    @property
    def store(self) -> PostgresJobStore:
        """
        The job store (opened on first use).
        """
        with self._lock:
            if self._store is None:
                self._store = PostgresJobStore(self.dsn)
            return self._store

    @property
    def app(self) -> procrastinate.App:
        """
        The procrastinate App, with the routilux tasks registered (opened on first use when
        this process is not a worker).
        """
        with self._lock:
            if self._app is None:
                connector = procrastinate.PsycopgConnector(
                    conninfo=self.dsn, min_size=1, max_size=8
                )
                app = procrastinate.App(connector=connector)
                app.task(name=RUN_TASK, queue=self.queue, pass_context=True)(self._run_task)
                self._app = app
            if not self._worker_mode and not self._opened:
                self._app.open()
                self._opened = True
            return self._app

    def migrate(self) -> list[str]:
        """
        Create or upgrade the database schema (see :func:`routilux.postgres.migrate`).
        """
        return migrate(self.dsn)

    def close(self) -> None:
        """
        Close the store, the queue connections and the control thread.
        """
        with self._lock:
            store, self._store = self._store, None
            app, opened, self._opened = self._app, self._opened, False
            hub, self._hub = self._hub, None
        if hub is not None:
            hub.close()
        if app is not None and opened:
            app.close()
        if store is not None:
            store.close()

    # -- submitting -------------------------------------------------------------------

    def submit(
        self,
        flow: Flow | Mapping[str, Any],
        entry_routine_id: str,
        entry_params: Mapping[str, Any] | None = None,
        *,
        execution_strategy: str | None = None,
        job_id: str | None = None,
        checkpoint_every: int = 1,
    ) -> PostgresJobHandle:
        """
        Store ``flow`` and a new ``queued`` job of it, queue it for the workers and return
        its handle at once. This is what ``flow.submit(..., backend=backend)`` calls.

        Args:
            checkpoint_every: Activations between checkpoints: 1 (the default) re-runs at
                most the activations that were in flight when a worker died; N writes N
                times less and may re-run up to N activations per job.
            job_id: The job's id (a UUID by default).

        Raises:
            RoutineNotFoundError: The flow has no routine ``entry_routine_id``.
            JobStoreError: A job with ``job_id`` exists already.
        """
        options = run_options(
            execution_strategy=execution_strategy, checkpoint_every=checkpoint_every
        )
        new_id = create_job(
            self.store, flow, entry_routine_id, entry_params, job_id=job_id, options=options
        )
        self.store.transition(new_id, ("pending",), "queued", fence=False)
        self._defer(new_id)
        return PostgresJobHandle(self, new_id)

    def submit_job(self, job_id: str) -> PostgresJobHandle:
        """
        Queue a stored ``pending`` or ``paused`` job (the :class:`~routilux.store.JobExecutor`
        protocol); a queued or running job is left as it is.
        """
        self.store.transition(job_id, ("pending", "paused"), "queued", fence=False)
        self._defer(job_id)
        return PostgresJobHandle(self, job_id)

    def handle(self, job_id: str) -> PostgresJobHandle:
        """
        Return the handle of a job submitted earlier, by any process.
        """
        return PostgresJobHandle(self, job_id)

    def shutdown(self, wait: bool = True) -> None:
        """
        Release this process's connections (the jobs keep running on the workers).
        """
        self.close()

    def _defer(self, job_id: str, *, priority: int = 0) -> bool:
        # Queue one execution of the job; False when one is queued already.
        key = job_lock(job_id)
        try:
            self.app.configure_task(
                RUN_TASK, queue=self.queue, lock=key, queueing_lock=key, priority=priority
            ).defer(job_id=job_id)
        except AlreadyEnqueued:
            return False
        return True

    def _requeue(self, job_id: str) -> bool:
        # Queue the job again ahead of the jobs waiting for their first run: its queued
        # entry (if any) is replaced by one of RECOVERY_PRIORITY. False when one was there.
        manager = self.app.job_manager
        queued = manager.list_jobs(lock=job_lock(job_id), status="todo")
        if any(entry.priority >= RECOVERY_PRIORITY for entry in queued):
            return False
        for entry in queued:
            if entry.id is not None:
                manager.cancel_job_by_id(entry.id)
        return self._defer(job_id, priority=RECOVERY_PRIORITY)

    def _end_entry(self, entry_id: int) -> None:
        # End a running queue entry whose worker is gone, as failed: it releases the job's
        # queue lock. An entry that ended meanwhile is left as it is.
        try:
            self.app.connector.get_sync_connector().execute_query(
                query=procrastinate.sql.queries["finish_job"],
                job_id=entry_id,
                status=Status.FAILED.value,
                delete_job=False,
            )
        except ConnectorException:
            _log.info("queue entry %s had ended already", entry_id)

    def _dead_entries(self, stall_timeout: float) -> list[Job]:
        # The running entries of RUN_TASK whose worker stopped heartbeating for
        # ``stall_timeout`` seconds (procrastinate's own stalled-job query).
        rows = self.app.connector.get_sync_connector().execute_query_all(
            query=procrastinate.sql.queries["select_stalled_jobs_by_heartbeat"],
            queue=self.queue,
            task_name=RUN_TASK,
            seconds_since_heartbeat=float(stall_timeout),
        )
        return [Job.from_row(row) for row in rows]

    def _lost_queued(self, age: float) -> list[str]:
        # The jobs queued for more than ``age`` seconds that have no queue entry at all.
        with self.store._conn() as conn:
            rows = conn.execute(
                "SELECT r.job_id FROM routilux_jobs r WHERE r.status = 'queued' "
                "AND r.updated_at < now() - make_interval(secs => %(age)s) "
                "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE "
                "(p.status = 'todo' AND p.queueing_lock = %(prefix)s || r.job_id) "
                "OR (p.status = 'doing' AND p.lock = %(prefix)s || r.job_id)) "
                "ORDER BY r.updated_at",
                {"age": float(age), "prefix": _LOCK_PREFIX},
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _queue_jobs(self, job_id: str, status: str) -> list[int]:
        jobs = self.app.job_manager.list_jobs(lock=job_lock(job_id), status=status)
        return [j.id for j in jobs if j.id is not None]

    def _cancel_queued(self, job_id: str) -> None:
        for qid in self._queue_jobs(job_id, "todo"):
            self.app.job_manager.cancel_job_by_id(qid)

    def _abort_running(self, job_id: str) -> None:
        for qid in self._queue_jobs(job_id, "doing"):
            self.app.job_manager.cancel_job_by_id(qid, abort=True)

    # -- the reaper -------------------------------------------------------------------

    def reap(
        self, *, stall_timeout: float | None = None, max_attempts: int | None = None
    ) -> dict[str, str]:
        """
        Take back the jobs whose worker died (stopped heartbeating for ``stall_timeout``
        seconds), whenever it died:

        - a ``running`` job is fenced (its old runner can no longer checkpoint) and queued
          again, to resume from its last checkpoint on any worker, or marked ``failed``
          once it had ``max_attempts`` runs;
        - a ``queued`` job whose queue entry a dead worker had taken before claiming the
          job is queued again (the dead entry, which held the job's queue lock, ends);
        - a ``queued`` job without any queue entry is queued again.

        Jobs queued again get :data:`RECOVERY_PRIORITY`: they run before the backlog.
        Every worker runs this every ``reap_every`` seconds (see :meth:`run_worker`); it is
        safe to run anywhere, any number of times.

        Returns:
            ``{job_id: "queued" | "failed"}`` for the jobs it acted on.
        """
        timeout = self.stall_timeout if stall_timeout is None else stall_timeout
        attempts = self.max_attempts if max_attempts is None else max_attempts
        store = self.store
        done: dict[str, str] = {}
        for job_id, _retries, worker in store.stalled_jobs(timeout):
            new = store.requeue_stalled(job_id, timeout, attempts)
            if new is None:
                continue
            _log.warning("reaped job %s of stalled worker %s: %s", job_id, worker, new)
            done[job_id] = new
            # The dead runner's queue entry still holds the job's lock: end it.
            for qid in self._queue_jobs(job_id, "doing"):
                self._end_entry(qid)
            if new == "queued":
                self._requeue(job_id)
            else:  # a failed job never runs again: drop any entry still queued for it
                self._cancel_queued(job_id)
        for entry in self._dead_entries(timeout):
            job_id = str(entry.task_kwargs.get("job_id"))
            try:
                status: str | None = store.job_status(job_id)
            except JobNotFoundError:
                status = None
            if status == "running" or entry.id is None:
                continue  # its runner's own heartbeat decides (above)
            self._end_entry(entry.id)
            if status == "queued":
                _log.warning(
                    "reaped job %s: its queue entry was taken by stalled worker %s",
                    job_id,
                    entry.worker_id,
                )
                self._requeue(job_id)
                done.setdefault(job_id, "queued")
        for job_id in self._lost_queued(timeout):
            if self._requeue(job_id):
                _log.warning("reaped job %s: it had lost its queue entry", job_id)
                done.setdefault(job_id, "queued")
        return done

    # -- the worker -------------------------------------------------------------------

    def _control_hub(self) -> ControlHub:
        with self._lock:
            if self._hub is None:
                self._hub = ControlHub(self.store, self.worker_id, interval=self.heartbeat)
            return self._hub

    def _run_task(self, context: JobContext, job_id: str) -> str:
        # The body of RUN_TASK, on a worker thread of a `routilux worker` process.
        store = self.store
        control = HubControl(
            job_id,
            should_abort=context.should_abort,
            shutdown=lambda: context.abort_reason() == AbortReason.SHUTDOWN,
        )
        hub = self._control_hub()
        hub.register(control)
        try:
            attempt = store.claim_queued(job_id, worker=self.worker_id)
            if attempt is None:
                _log.info("job %s is not queued any more; nothing to do", job_id)
                return "skipped"
            claimed = _ClaimedStore(store, attempt, control)
            try:
                state = run_job(job_id, claimed, control, worker=self.worker_id, takeover=True)
            except StaleAttemptError as exc:
                _log.warning("job %s was taken over by another runner: %s", job_id, exc)
                return "fenced"
            except Exception:
                store.transition(job_id, ("running",), "failed")
                raise
            if control.paused_for_shutdown and state.status == "paused":
                self._defer(job_id, priority=RECOVERY_PRIORITY)
                return "requeued"
            return str(state.status)
        finally:
            hub.unregister(control)

    def _reap_once(self) -> None:
        # One tick of a worker's reaper: skipped when another worker's reaper is running.
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_REAP_LOCK_KEY,)).fetchone()
            if row is None or not row[0]:
                return
            self.reap()  # the lock goes with the connection

    async def _reap_periodically(self, every: float, stop: asyncio.Event) -> None:
        # The worker's reaper, beside (not in) the job queue: never behind the backlog, and
        # it takes none of the worker's job slots.
        while not stop.is_set():
            try:
                await procrastinate.utils.sync_to_async(self._reap_once)
            except Exception as exc:  # noqa: BLE001 - the reaper must outlive a lost connection
                _log.warning("the reaper failed (it runs again in %s s): %r", every, exc)
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)

    def run_worker(
        self,
        *,
        concurrency: int = 1,
        name: str | None = None,
        reap_every: float | None = DEFAULT_REAP_EVERY,
        shutdown_timeout: float | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        """
        Run a worker in this process until it receives SIGTERM or SIGINT: up to
        ``concurrency`` jobs at once. The first signal stops taking jobs and lets the
        running ones finish (after ``shutdown_timeout`` seconds, they are paused at their
        next boundary and queued again for another worker); a second signal stops at once,
        and the reaper later hands its jobs to other workers.

        Args:
            reap_every: Seconds between two runs of :meth:`reap` in this process, beside
                the job queue (it never waits behind queued jobs and takes no job slot);
                the workers' reapers take turns. A job whose worker died runs again within
                ``stall_timeout + reap_every`` seconds once a worker has a free slot.
                ``None`` or 0: never (run :meth:`reap` elsewhere).
            poll_interval: Seconds between two queue polls when no NOTIFY arrives.
        """
        if concurrency < 1:
            msg = f"concurrency must be at least 1, got {concurrency}"
            raise ConfigurationError(msg, name="concurrency", value=concurrency)
        if reap_every is not None and (not math.isfinite(reap_every) or reap_every < 0):
            msg = f"reap_every must be a number of seconds >= 0, got {reap_every}"
            raise ConfigurationError(msg, name="reap_every", value=reap_every)
        with self._lock:
            self._worker_mode = True
        app = self.app
        options: WorkerOptions = {
            "queues": [self.queue],
            "concurrency": concurrency,
            "name": name or self.worker_id,
            "update_heartbeat_interval": self.heartbeat,
            "stalled_worker_timeout": self.stall_timeout,
            "fetch_job_polling_interval": poll_interval,
            "abort_job_polling_interval": min(poll_interval, 1.0),
        }
        if shutdown_timeout is not None:  # else: wait for the running jobs
            options["shutdown_graceful_timeout"] = shutdown_timeout

        async def work() -> None:
            async with app.open_async():
                stop = asyncio.Event()
                reaper = (
                    asyncio.create_task(self._reap_periodically(reap_every, stop))
                    if reap_every
                    else None
                )
                try:
                    await app.run_worker_async(**options)
                finally:
                    stop.set()
                    if reaper is not None:
                        await reaper  # lets a running tick finish while the loop still runs

        try:
            asyncio.run(work())
        finally:
            self.close()

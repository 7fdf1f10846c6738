"""
PostgresBackend: jobs queued with procrastinate, run by ``routilux worker`` processes anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import JobContext

from routilux import Flow
from routilux.exceptions import ConfigurationError
from routilux.store import create_job, default_worker_id, run_options
from routilux_postgres import _reaper, _worker
from routilux_postgres._control import ControlHub
from routilux_postgres._handle import PostgresJobHandle
from routilux_postgres._queue import DEFAULT_QUEUE, DEFAULT_REAP_EVERY, RUN_TASK, job_lock
from routilux_postgres._schema import migrate
from routilux_postgres._store import PostgresJobStore


__all__ = ["PostgresBackend"]


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

    def _worker_app(self) -> procrastinate.App:
        # The App of a worker process, which opens it itself (asynchronously).
        with self._lock:
            self._worker_mode = True
        return self.app

    def migrate(self) -> list[str]:
        """
        Create or upgrade the database schema (see :func:`routilux_postgres.migrate`).
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
        return _reaper.reap(self, timeout, attempts)

    # -- the worker -------------------------------------------------------------------

    def _control_hub(self) -> ControlHub:
        with self._lock:
            if self._hub is None:
                self._hub = ControlHub(self.store, self.worker_id, interval=self.heartbeat)
            return self._hub

    def _run_task(self, context: JobContext, job_id: str) -> str:
        # The body of RUN_TASK, on a worker thread of a `routilux worker` process.
        return _worker.run_task(self, context, job_id)

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
        _worker.run_worker(
            self,
            concurrency=concurrency,
            name=name,
            reap_every=reap_every,
            shutdown_timeout=shutdown_timeout,
            poll_interval=poll_interval,
        )

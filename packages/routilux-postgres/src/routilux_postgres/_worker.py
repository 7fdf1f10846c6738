"""
The worker side of PostgresBackend: the task that runs one job, the worker loop and its reaper.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import procrastinate.utils
import psycopg
from procrastinate.job_context import AbortReason, JobContext

from routilux.exceptions import ConfigurationError, StaleAttemptError
from routilux.store import run_job
from routilux_postgres._control import HubControl
from routilux_postgres._queue import RECOVERY_PRIORITY, log
from routilux_postgres._store import PostgresJobStore


if TYPE_CHECKING:
    from procrastinate.app import WorkerOptions

    from routilux_postgres._backend import PostgresBackend


__all__ = ["run_task", "run_worker"]

_REAP_LOCK_KEY = 0x526F757452656170  # "RoutReap": one worker's reaper at a time


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
        self._log = store._log
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

    def save_checkpoint(
        self,
        job_id: str,
        snapshot: Mapping[str, Any],
        *,
        status: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        # The status of a whole snapshot, or of a delta (which always names it).
        named = status or snapshot.get("status") or snapshot.get("set", {}).get("status")
        if named == "paused" and self._control.paused_for_shutdown:
            status = "queued"
        return super().save_checkpoint(job_id, snapshot, status=status, attempt=attempt)

    def close(self) -> None:
        """The worker's store outlives the run."""


def run_task(backend: PostgresBackend, context: JobContext, job_id: str) -> str:
    """
    The body of the procrastinate task ``RUN_TASK``, on a worker thread of a ``routilux
    worker`` process: claim the queued job, run it until it rests; return what happened.
    """
    store = backend.store
    control = HubControl(
        job_id,
        should_abort=context.should_abort,
        shutdown=lambda: context.abort_reason() == AbortReason.SHUTDOWN,
    )
    hub = backend._control_hub()
    hub.register(control)
    try:
        attempt = store.claim_queued(job_id, worker=backend.worker_id)
        if attempt is None:
            log.info("job %s is not queued any more; nothing to do", job_id)
            return "skipped"
        claimed = _ClaimedStore(store, attempt, control)
        try:
            state = run_job(job_id, claimed, control, worker=backend.worker_id, takeover=True)
        except StaleAttemptError as exc:
            log.warning("job %s was taken over by another runner: %s", job_id, exc)
            return "fenced"
        except Exception:
            store.transition(job_id, ("running",), "failed")
            raise
        if control.paused_for_shutdown and state.status == "paused":
            backend._defer(job_id, priority=RECOVERY_PRIORITY)
            return "requeued"
        return str(state.status)
    finally:
        hub.unregister(control)


def _reap_once(backend: PostgresBackend) -> None:
    # One tick of a worker's reaper: skipped when another worker's reaper is running.
    with psycopg.connect(backend.dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_REAP_LOCK_KEY,)).fetchone()
        if row is None or not row[0]:
            return
        backend.reap()  # the lock goes with the connection


async def _reap_periodically(backend: PostgresBackend, every: float, stop: asyncio.Event) -> None:
    # The worker's reaper, beside (not in) the job queue: never behind the backlog, and
    # it takes none of the worker's job slots.
    while not stop.is_set():
        try:
            await procrastinate.utils.sync_to_async(_reap_once, backend)
        except Exception as exc:  # noqa: BLE001 - the reaper must outlive a lost connection
            log.warning("the reaper failed (it runs again in %s s): %r", every, exc)
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def run_worker(
    backend: PostgresBackend,
    *,
    concurrency: int,
    name: str | None,
    reap_every: float | None,
    shutdown_timeout: float | None,
    poll_interval: float,
) -> None:
    """
    The work of :meth:`PostgresBackend.run_worker` (see there).
    """
    if concurrency < 1:
        msg = f"concurrency must be at least 1, got {concurrency}"
        raise ConfigurationError(msg, name="concurrency", value=concurrency)
    if reap_every is not None and (not math.isfinite(reap_every) or reap_every < 0):
        msg = f"reap_every must be a number of seconds >= 0, got {reap_every}"
        raise ConfigurationError(msg, name="reap_every", value=reap_every)
    app = backend._worker_app()
    options: WorkerOptions = {
        "queues": [backend.queue],
        "concurrency": concurrency,
        "name": name or backend.worker_id,
        "update_heartbeat_interval": backend.heartbeat,
        "stalled_worker_timeout": backend.stall_timeout,
        "fetch_job_polling_interval": poll_interval,
        "abort_job_polling_interval": min(poll_interval, 1.0),
    }
    if shutdown_timeout is not None:  # else: wait for the running jobs
        options["shutdown_graceful_timeout"] = shutdown_timeout

    async def work() -> None:
        async with app.open_async():
            stop = asyncio.Event()
            reaper = (
                asyncio.create_task(_reap_periodically(backend, reap_every, stop))
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
        backend.close()

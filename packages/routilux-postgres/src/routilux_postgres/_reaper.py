"""
The reaper: it takes back the jobs whose worker died, whenever it died, and queues them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import procrastinate.sql
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job, Status

from routilux.exceptions import JobNotFoundError
from routilux_postgres._queue import LOCK_PREFIX, RECOVERY_PRIORITY, RUN_TASK, job_lock, log


if TYPE_CHECKING:
    from routilux_postgres._backend import PostgresBackend


__all__ = ["reap"]


def reap(backend: PostgresBackend, stall_timeout: float, max_attempts: int) -> dict[str, str]:
    """
    The work of :meth:`PostgresBackend.reap`: return ``{job_id: "queued" | "failed"}`` for
    the jobs it acted on.
    """
    store = backend.store
    done: dict[str, str] = {}
    for job_id, _retries, worker in store.stalled_jobs(stall_timeout):
        new = store.requeue_stalled(job_id, stall_timeout, max_attempts)
        if new is None:
            continue
        log.warning("reaped job %s of stalled worker %s: %s", job_id, worker, new)
        done[job_id] = new
        # The dead runner's queue entry still holds the job's lock: end it.
        for qid in backend._queue_jobs(job_id, "doing"):
            _end_entry(backend, qid)
        if new == "queued":
            _requeue(backend, job_id)
        else:  # a failed job never runs again: drop any entry still queued for it
            backend._cancel_queued(job_id)
    for entry in _dead_entries(backend, stall_timeout):
        job_id = str(entry.task_kwargs.get("job_id"))
        try:
            status: str | None = store.job_status(job_id)
        except JobNotFoundError:
            status = None
        if status == "running" or entry.id is None:
            continue  # its runner's own heartbeat decides (above)
        _end_entry(backend, entry.id)
        if status == "queued":
            log.warning(
                "reaped job %s: its queue entry was taken by stalled worker %s",
                job_id,
                entry.worker_id,
            )
            _requeue(backend, job_id)
            done.setdefault(job_id, "queued")
    for job_id in _lost_queued(backend, stall_timeout):
        if _requeue(backend, job_id):
            log.warning("reaped job %s: it had lost its queue entry", job_id)
            done.setdefault(job_id, "queued")
    return done


def _requeue(backend: PostgresBackend, job_id: str) -> bool:
    # Queue the job again ahead of the jobs waiting for their first run: its queued
    # entry (if any) is replaced by one of RECOVERY_PRIORITY. False when one was there.
    manager = backend.app.job_manager
    queued = manager.list_jobs(lock=job_lock(job_id), status="todo")
    if any(entry.priority >= RECOVERY_PRIORITY for entry in queued):
        return False
    for entry in queued:
        if entry.id is not None:
            manager.cancel_job_by_id(entry.id)
    return backend._defer(job_id, priority=RECOVERY_PRIORITY)


def _end_entry(backend: PostgresBackend, entry_id: int) -> None:
    # End a running queue entry whose worker is gone, as failed: it releases the job's
    # queue lock. An entry that ended meanwhile is left as it is.
    try:
        backend.app.connector.get_sync_connector().execute_query(
            query=procrastinate.sql.queries["finish_job"],
            job_id=entry_id,
            status=Status.FAILED.value,
            delete_job=False,
        )
    except ConnectorException:
        log.info("queue entry %s had ended already", entry_id)


def _dead_entries(backend: PostgresBackend, stall_timeout: float) -> list[Job]:
    # The running entries of RUN_TASK whose worker stopped heartbeating for
    # ``stall_timeout`` seconds (procrastinate's own stalled-job query).
    rows = backend.app.connector.get_sync_connector().execute_query_all(
        query=procrastinate.sql.queries["select_stalled_jobs_by_heartbeat"],
        queue=backend.queue,
        task_name=RUN_TASK,
        seconds_since_heartbeat=float(stall_timeout),
    )
    return [Job.from_row(row) for row in rows]


def _lost_queued(backend: PostgresBackend, age: float) -> list[str]:
    # The jobs queued for more than ``age`` seconds that have no queue entry at all.
    with backend.store._conn() as conn:
        rows = conn.execute(
            "SELECT r.job_id FROM routilux_jobs r WHERE r.status = 'queued' "
            "AND r.updated_at < now() - make_interval(secs => %(age)s) "
            "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE "
            "(p.status = 'todo' AND p.queueing_lock = %(prefix)s || r.job_id) "
            "OR (p.status = 'doing' AND p.lock = %(prefix)s || r.job_id)) "
            "ORDER BY r.updated_at",
            {"age": float(age), "prefix": LOCK_PREFIX},
        ).fetchall()
    return [str(r[0]) for r in rows]

"""
What routilux jobs are in procrastinate's queue: the task, the queue, the locks, the priorities.
"""

from __future__ import annotations

import logging


__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_REAP_EVERY",
    "LOCK_PREFIX",
    "RECOVERY_PRIORITY",
    "RUN_TASK",
    "job_lock",
    "log",
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

LOCK_PREFIX = "routilux:"
"""What a job's queue locks start with (followed by the job id)."""

log = logging.getLogger("routilux.postgres")
"""The logger of the backend, its workers and its reaper."""


def job_lock(job_id: str) -> str:
    """
    Return the procrastinate ``lock`` and ``queueing_lock`` of a job's queue entries: at
    most one queued and one running execution per routilux job.
    """
    return f"{LOCK_PREFIX}{job_id}"

"""
Scale-out on PostgreSQL (extra ``routilux-core[postgres]``): a shared job store, and whole
jobs queued with procrastinate and run by ``routilux worker`` processes on any machine.

- :class:`PostgresBackend` submits jobs (``flow.submit(..., backend=PostgresBackend(dsn))``),
  runs workers and reaps jobs whose worker died; :class:`PostgresJobHandle` pauses, resumes,
  cancels and waits for one job from any process.
- :class:`PostgresJobStore` is the :class:`~routilux.store.JobStore` in the database.
- :func:`migrate` (``routilux db init --dsn ...``) creates or upgrades the schema.

Delivery is at least once: a worker that dies re-runs, on another worker, the activations
after the job's last committed checkpoint and none before it (see docs/deployment.md).

.. versionadded:: 0.10
"""

from __future__ import annotations


try:
    import procrastinate as _procrastinate  # noqa: F401 - fail here, with a clear message
    import psycopg as _psycopg  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    msg = (
        f"routilux.postgres needs the postgres extra: pip install 'routilux-core[postgres]' ({exc})"
    )
    raise ImportError(msg) from exc

from routilux.postgres._backend import (
    DEFAULT_QUEUE,
    DEFAULT_REAP_EVERY,
    RECOVERY_PRIORITY,
    RUN_TASK,
    PostgresBackend,
    PostgresJobHandle,
    job_lock,
)
from routilux.postgres._control import ControlHub, HubControl
from routilux.postgres._schema import SCHEMA_VERSION, migrate
from routilux.postgres._store import CONTROL_CHANNEL, STATUS_CHANNEL, PostgresJobStore


__all__ = [
    "CONTROL_CHANNEL",
    "DEFAULT_QUEUE",
    "DEFAULT_REAP_EVERY",
    "RECOVERY_PRIORITY",
    "RUN_TASK",
    "SCHEMA_VERSION",
    "STATUS_CHANNEL",
    "ControlHub",
    "HubControl",
    "PostgresBackend",
    "PostgresJobHandle",
    "PostgresJobStore",
    "job_lock",
    "migrate",
]

"""
Scale-out on PostgreSQL: a shared job store, and whole jobs queued with procrastinate and run
by ``routilux worker`` processes on any machine.

- :class:`PostgresBackend` submits jobs (``flow.submit(..., backend=PostgresBackend(dsn))``),
  runs workers and reaps jobs whose worker died; :class:`PostgresJobHandle` pauses, resumes,
  cancels and waits for one job from any process.
- :class:`PostgresJobStore` is the :class:`~routilux.store.JobStore` in the database;
  :func:`routilux.store.open_store` opens it from a ``postgresql://`` (or ``postgres://``)
  URL, through this package's ``routilux.stores`` entry points.
- :func:`migrate` (``routilux db init --dsn ...``) creates or upgrades the schema.

Delivery is at least once: a worker that dies re-runs, on another worker, the activations
after the job's last committed checkpoint and none before it (see docs/deployment.md).

.. versionadded:: 0.10
"""

from __future__ import annotations

from typing import Any

from routilux_postgres._backend import PostgresBackend
from routilux_postgres._control import ControlHub, HubControl
from routilux_postgres._handle import PostgresJobHandle
from routilux_postgres._queue import (
    DEFAULT_QUEUE,
    DEFAULT_REAP_EVERY,
    RECOVERY_PRIORITY,
    RUN_TASK,
    job_lock,
)
from routilux_postgres._schema import SCHEMA_VERSION, migrate
from routilux_postgres._store import CONTROL_CHANNEL, STATUS_CHANNEL, PostgresJobStore


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


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from routilux_postgres._version import __version__

        return __version__
    msg = f"module 'routilux_postgres' has no attribute {name!r}"
    raise AttributeError(msg)

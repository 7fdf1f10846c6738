"""
DaskJobExecutor: whole routilux jobs fanned out to a Dask cluster.

Each job is one Dask task that runs :func:`~routilux.store.run_job` on a worker; only names
and JSON travel (the task function is pickled by reference, routines are rebuilt by their
registered names). Pause and cancel are cooperative: a flag the scheduler polls between
activations, set from Dask ``Event`` objects (and the store's control request when there is one).

Durability depends on the store:

- With a store that the workers reach (routilux-postgres's ``PostgresJobStore``, or a
  :class:`~routilux.store.SqliteJobStore` file when the cluster is one machine), every
  activation is checkpointed by default; when a worker dies, Dask runs the task again
  elsewhere and the job resumes from its last checkpoint (at least once). The workers
  re-open the store from its :attr:`~routilux.store.JobStore.url` with
  :func:`~routilux.store.open_store`.
- Without a store, the job's state lives in the task: a rescheduled task starts the job again
  from what was submitted, and if the Dask scheduler dies, queued and running jobs are lost.

.. versionadded:: 0.10
"""

from __future__ import annotations

from typing import Any

from routilux_dask._executor import DaskJobExecutor
from routilux_dask._handle import DaskJobHandle


__all__ = ["DaskJobExecutor", "DaskJobHandle"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from routilux_dask._version import __version__

        return __version__
    msg = f"module 'routilux_dask' has no attribute {name!r}"
    raise AttributeError(msg)

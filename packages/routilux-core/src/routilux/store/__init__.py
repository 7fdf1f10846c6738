"""
Job stores: flows and job checkpoints that outlive the process, and the seams executors use.

- :class:`JobStore` is the protocol every store implements; :class:`SqliteJobStore` is the
  embedded one (one file, no server). :func:`open_store` opens a store from its URL or
  path: other kinds (``postgresql://`` in routilux-postgres) come from the
  ``routilux.stores`` entry points; :mod:`routilux.store.sql` helps implement one on SQL.
- :func:`create_job` writes a flow and a new job to a store; :func:`run_job` runs or resumes
  a stored job, checkpointing it into the store, until it rests. A store keeps a job's
  checkpoints as a log (:meth:`JobStore.checkpoints`, :class:`CheckpointInfo`): each
  checkpoint writes what changed, and any kept one can be loaded or forked.
- :class:`JobExecutor` and :class:`JobHandle` are the protocol of whatever runs jobs
  (:class:`LocalJobExecutor` here; PostgreSQL and Dask executors in routilux-postgres and
  routilux-dask, built on :class:`BaseJobHandle` and :func:`run_options`).
- :func:`load_flow_file` reads and validates a flow file (the JSON of ``Flow.serialize()``).
- :class:`JobControl` is what the scheduler polls between activations for pause and
  cancel requests; :class:`StoreControl` reads them from a store.

What a crash costs: a job resumed by :func:`run_job` after its process died re-runs the
activations that had not finished at its last checkpoint, and none before it (at least once).
"""

from __future__ import annotations

from routilux.engine._control import JobControl
from routilux.persist._flowfile import entry_candidates, load_flow_file, read_flow_file
from routilux.persist._open import STORES_ENTRY_POINT_GROUP, open_store, sqlite_path
from routilux.persist._protocols import (
    CLAIMABLE_STATUSES,
    CONTROL_REQUESTS,
    SETTLED_STATUSES,
    CheckpointInfo,
    JobExecutor,
    JobHandle,
    JobRecord,
    JobStore,
    default_worker_id,
    flow_fingerprint,
)
from routilux.persist._runner import (
    BaseJobHandle,
    LocalJobExecutor,
    StoreControl,
    create_job,
    load_job_state,
    run_job,
    run_options,
)
from routilux.persist._sqlite import SqliteJobStore


__all__ = [
    "CLAIMABLE_STATUSES",
    "CONTROL_REQUESTS",
    "SETTLED_STATUSES",
    "STORES_ENTRY_POINT_GROUP",
    "BaseJobHandle",
    "CheckpointInfo",
    "JobControl",
    "JobExecutor",
    "JobHandle",
    "JobRecord",
    "JobStore",
    "LocalJobExecutor",
    "SqliteJobStore",
    "StoreControl",
    "create_job",
    "default_worker_id",
    "entry_candidates",
    "flow_fingerprint",
    "load_flow_file",
    "load_job_state",
    "open_store",
    "read_flow_file",
    "run_job",
    "run_options",
    "sqlite_path",
]

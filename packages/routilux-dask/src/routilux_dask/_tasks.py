"""
What runs on the Dask workers: one task per job run, its pause/cancel control, its store.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from typing import Any

import distributed

from routilux import JobState
from routilux.exceptions import ConfigurationError
from routilux.lifecycle import restore
from routilux.store import (
    SETTLED_STATUSES,
    JobControl,
    JobStore,
    SqliteJobStore,
    create_job,
    open_store,
    run_job,
)


__all__ = ["Event", "run_detached", "run_stored", "store_url", "stored_rest"]

# distributed's coordination primitives are only partly annotated: reach them through Any,
# so strict mypy checks our code rather than their stubs.
Event: Any = distributed.Event
"""``distributed.Event``: a job's ``<prefix>-pause`` and ``<prefix>-cancel`` flags."""
_get_client: Any = distributed.get_client

_stores: dict[str, JobStore] = {}
_stores_lock = threading.Lock()


def store_url(store: JobStore) -> str:
    """
    Return the URL Dask workers re-open ``store`` from (its :attr:`~routilux.store.JobStore.url`).

    Raises:
        ConfigurationError: No other process can open the store (an in-memory database).
    """
    url = store.url
    if url is None:
        msg = (
            f"{store!r} cannot be reached from Dask workers: use a store other processes can "
            "open (a PostgresJobStore, or a SqliteJobStore file on a single-machine cluster)"
        )
        raise ConfigurationError(msg, name="store", value=store)
    return url


def _open_store(url: str) -> JobStore:
    # One store per worker process and URL (its connections are reused by every task).
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = open_store(url)
        return store


def stored_rest(store: JobStore, job_id: str) -> JobState:
    """
    Return the job's JobState as the store has it (its last checkpoint, or a bare state
    when it never ran), read without rebuilding its flow: no routine needs to be registered.
    """
    record = store.load_job(job_id)
    if record.state is None:
        state = JobState(record.flow_id, job_id=job_id)
    else:
        state = JobState()
        state.deserialize(record.state)
    restore(state, record.status)
    return state


class _EventControl(JobControl):
    """
    The control of a job on a Dask worker: a thread polls the job's two Dask Events every
    ``interval`` seconds and sets flags, so :meth:`poll` never waits for the scheduler.
    """

    def __init__(self, prefix: str, interval: float) -> None:
        client = _get_client()
        self._events = {
            "cancel": Event(f"{prefix}-cancel", client=client),
            "pause": Event(f"{prefix}-pause", client=client),
        }
        self._interval = interval
        self._request: str | None = None
        self._delivered: str | None = None
        self._stop = threading.Event()
        # Read once before the job starts: a job cancelled or paused while it waited in the
        # queue never runs an activation.
        self._read()
        self._thread = threading.Thread(target=self._watch, name="routilux-dask-control")
        self._thread.daemon = True
        self._thread.start()

    def _read(self) -> None:
        for request, event in self._events.items():
            try:
                if event.is_set():
                    self._request = request
                    return
            except Exception:  # noqa: BLE001 - a lost scheduler must not kill the job
                pass

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self._read()

    def poll(self) -> str | None:
        request = self._request
        if request is None or request == self._delivered:
            return None
        self._delivered = request
        return request

    def close(self) -> None:
        self._stop.set()


def _import(modules: Sequence[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def run_stored(
    url: str,
    job_id: str,
    prefix: str,
    imports: Sequence[str],
    interval: float,
    submitted_attempt: int,
) -> dict[str, Any]:
    """
    The Dask task of a job kept in the shared store at ``url``; returns the serialized
    JobState at rest.

    Dask runs a task again when the worker running it died (``takeover``: the job is still
    "running" then; the fencing token still stops a zombie), and also when the worker
    holding its result died: the job rests then, claimed or settled since the task was
    submitted (its attempt went up), and the task returns the stored state instead of
    running the job again.
    """
    _import(imports)
    store = _open_store(url)
    record = store.load_job(job_id)
    if record.status in SETTLED_STATUSES and record.attempt > submitted_attempt:
        return stored_rest(store, job_id).serialize()
    control = _EventControl(prefix, interval)
    try:
        state = run_job(job_id, store, control, takeover=True)
    finally:
        control.close()
    return state.serialize()


def run_detached(
    flow_data: dict[str, Any],
    entry: str,
    params: dict[str, Any],
    options: dict[str, Any],
    state_data: dict[str, Any] | None,
    job_id: str,
    prefix: str,
    imports: Sequence[str],
    interval: float,
) -> dict[str, Any]:
    """
    The Dask task of a job without a shared store: a private in-memory store holds it for
    the length of the task, and the serialized JobState travels back as the task's result.
    """
    _import(imports)
    store = SqliteJobStore(":memory:")
    control = _EventControl(prefix, interval)
    try:
        create_job(store, flow_data, entry, params, job_id=job_id, options=options)
        if state_data is not None:
            store.save_checkpoint(job_id, state_data, status="paused")
        return run_job(job_id, store, control).serialize()
    finally:
        control.close()
        store.close()

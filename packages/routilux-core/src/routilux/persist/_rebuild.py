"""
Rebuilding a stored job's Flow and JobState, and the flows ``run_job`` rebuilt, kept in
this process for the next job of the same flow version.

A stored flow is data: rebuilding it (routines by registered name, their slots and
handlers, the connections) costs more than a short job takes to run. A Flow is static and
shared by all its jobs, so the runs of one process share the Flow they rebuilt for a flow
version (its fingerprint), as long as no registered name was removed since (see
:func:`routilux.names._registry.generation`). A run leases its flow; a flow pushed out of
the cache, or given up after a run that went wrong, is shut down once its last lease ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from routilux.engine._flow import Flow
from routilux.exceptions import FlowMismatchError
from routilux.model import _lifecycle as lifecycle
from routilux.model._job_state import JobState
from routilux.names._registry import generation
from routilux.persist._protocols import JobRecord, JobStore, flow_fingerprint


__all__ = ["FlowCache", "build_flow", "rebuild", "state_of", "stored_flow"]

_Key = tuple[str, str]


def rebuild(store: JobStore, record: JobRecord) -> tuple[Flow, JobState]:
    """
    Return a new Flow and the JobState of a job record (read once: its state and status
    belong together).
    """
    flow = build_flow(stored_flow(store, record))
    return flow, state_of(flow, record)


def stored_flow(store: JobStore, record: JobRecord) -> dict[str, Any]:
    """
    Return the document of the job's flow version, read from the store and checked.

    Raises:
        FlowMismatchError: The stored flow does not match the job's fingerprint.
    """
    data = store.load_flow(record.flow_id, record.fingerprint)
    if flow_fingerprint(data) != record.fingerprint:
        msg = (
            f"the stored flow {record.flow_id!r} does not match the fingerprint job "
            f"{record.job_id!r} was created with"
        )
        raise FlowMismatchError(msg)
    return data


def build_flow(data: dict[str, Any]) -> Flow:
    """
    Return a new Flow of a flow document.
    """
    flow = Flow()
    flow.deserialize(data)
    return flow


def state_of(flow: Flow, record: JobRecord) -> JobState:
    """
    Return the JobState of a job record (a new one for a job that never ran).
    """
    if record.state is None:
        job_state = JobState(flow.flow_id, history_limit=flow.history_limit)
        job_state.job_id = record.job_id
    else:
        job_state = JobState()
        job_state.deserialize(record.state)
    lifecycle.restore(job_state, record.status)
    return job_state


class _Entry:
    __slots__ = ("flow", "generation", "leases", "retired")

    def __init__(self, flow: Flow, made_at: int) -> None:
        self.flow = flow
        self.generation = made_at
        self.leases = 0
        self.retired = False


class FlowCache:
    """
    Up to ``size`` rebuilt flows by ``(flow_id, fingerprint)``, the least recently used
    leaving first. Thread-safe.
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    @contextmanager
    def lease(self, key: _Key, build: Callable[[], Flow]) -> Iterator[Flow]:
        """
        Lend the flow of ``key`` (built by ``build`` when it is not cached) for one run.

        If the run raises, the flow is given up (shut down once no other run uses it): a
        run that went wrong may leave work of its job on the flow's workers.
        """
        entry = self._acquire(key, build)
        ok = False
        try:
            yield entry.flow
            ok = True
        finally:
            self._release(key, entry, retire=not ok)

    def _acquire(self, key: _Key, build: Callable[[], Flow]) -> _Entry:
        now = generation()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.generation == now:
                self._entries.move_to_end(key)
                entry.leases += 1
                return entry
        fresh = _Entry(build(), now)  # outside the lock: building calls routine code
        stale: list[_Entry] = []
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.generation == now:
                stale.append(fresh)  # another run built it meanwhile: use that one
                fresh = entry
            else:
                if entry is not None:
                    stale.append(self._retire_locked(key))
                self._entries[key] = fresh
                while len(self._entries) > self._size:
                    oldest = next(iter(self._entries))
                    stale.append(self._retire_locked(oldest))
            fresh.leases += 1
            idle = [e for e in stale if e.leases == 0]
        for old in idle:
            old.flow.shutdown(wait=False)
        return fresh

    def _retire_locked(self, key: _Key) -> _Entry:
        entry = self._entries.pop(key)
        entry.retired = True
        return entry

    def _release(self, key: _Key, entry: _Entry, *, retire: bool) -> None:
        with self._lock:
            entry.leases -= 1
            if retire and not entry.retired and self._entries.get(key) is entry:
                self._retire_locked(key)
            done = entry.retired and entry.leases == 0
        if done:
            entry.flow.shutdown(wait=False)

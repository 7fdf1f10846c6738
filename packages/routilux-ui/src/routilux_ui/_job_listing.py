"""
Adapter: the jobs of a store as pages, counted by status, with each row's error count.

Filtered, newest first, over ``JobStore.list_jobs`` and ``load_job``.

``list_jobs`` returns every row, oldest first, without the error count, so this module keeps
the last listing for ``max_age`` seconds (shared by the page, the API and the live updates)
and pages through it in memory, and reads a row's error count from its checkpoint once per
version of the row. Store methods that would replace it::

    JobStore.list_jobs(*, status=None, flow_id=None, id_prefix=None, limit=None, offset=0,
                       newest_first=False) -> list[JobRecord]
    JobStore.count_jobs(*, flow_id=None, id_prefix=None) -> dict[str, int]  # by status
    JobRecord.error_count: int  # len(state["errors"]), kept in a column at each checkpoint
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence

import attrs

from routilux.exceptions import JobStoreError
from routilux.store import JobRecord, JobStore


__all__ = ["JobIndex", "JobPage", "Snapshot"]

_MAX_CACHED_COUNTS = 50_000
"""Error counts kept (one per job version); past that the cache starts again."""


@attrs.frozen
class Snapshot:
    """
    One listing of the store's jobs.
    """

    #: The jobs, newest first.
    records: tuple[JobRecord, ...]
    #: ``job_id -> (status, updated_at, requested)``: what a live update compares.
    marks: dict[str, tuple[str, float, str | None]]
    #: When it was read (``time.monotonic()``).
    loaded_at: float
    #: Seconds the listing took to read.
    took: float


@attrs.frozen
class JobPage:
    """
    One page of the jobs list.
    """

    #: The jobs of the page, newest first.
    records: tuple[JobRecord, ...]
    #: ``job_id -> number of errors`` (``None``: the job's checkpoint cannot be read).
    errors: dict[str, int | None]
    #: How many jobs match the filters.
    total: int
    #: Jobs per status, among those matching the flow and id filters (not the status one).
    counts: dict[str, int]
    #: Every flow id in the store, sorted.
    flows: tuple[str, ...]
    limit: int
    offset: int


class JobIndex:
    """
    The jobs of ``store``, listed at most once every ``max_age`` seconds.
    """

    def __init__(self, store: JobStore, *, max_age: float = 1.0) -> None:
        self._store = store
        self._max_age = max_age
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._errors: dict[tuple[str, float], int | None] = {}

    def snapshot(self, max_age: float | None = None) -> Snapshot:
        """
        Return a listing at most ``max_age`` seconds old (the index's own by default),
        reading the store again when the last one is older. Concurrent callers share one read.
        """
        age = self._max_age if max_age is None else max_age
        with self._lock:
            current = self._snapshot
            if current is not None and time.monotonic() - current.loaded_at <= age:
                return current
            start = time.monotonic()
            records = tuple(reversed(self._store.list_jobs()))
            end = time.monotonic()
            marks = {r.job_id: (r.status, r.updated_at, r.requested) for r in records}
            self._snapshot = Snapshot(records, marks, end, end - start)
            return self._snapshot

    def invalidate(self) -> None:
        """
        Forget the listing: the next read lists the store again (after an action of this page).
        """
        with self._lock:
            self._snapshot = None

    def page(
        self,
        *,
        status: str | None = None,
        flow: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobPage:
        """
        Return the jobs with ``status``, of ``flow``, whose id starts with ``q``, newest
        first, ``limit`` of them from ``offset``.
        """
        records = self.snapshot().records
        flows = tuple(sorted({r.flow_id for r in records}))
        if flow:
            records = tuple(r for r in records if r.flow_id == flow)
        if q:
            records = tuple(r for r in records if r.job_id.startswith(q))
        counts = dict(Counter(_status(r) for r in records))
        if status:
            records = tuple(r for r in records if _status(r) == status)
        chosen = records[offset : offset + limit]
        return JobPage(
            records=chosen,
            errors=self.error_counts(chosen),
            total=len(records),
            counts=counts,
            flows=flows,
            limit=limit,
            offset=offset,
        )

    def error_counts(self, records: Sequence[JobRecord]) -> dict[str, int | None]:
        """
        Return the number of errors in each job's last checkpoint, read once per version.
        """
        out: dict[str, int | None] = {}
        for record in records:
            key = (record.job_id, record.updated_at)
            if key not in self._errors:
                if len(self._errors) >= _MAX_CACHED_COUNTS:
                    self._errors.clear()
                self._errors[key] = self._count_errors(record)
            out[record.job_id] = self._errors[key]
        return out

    def _count_errors(self, record: JobRecord) -> int | None:
        if record.damaged is not None:
            return None
        try:
            state = self._store.load_job(record.job_id).state
        except JobStoreError:  # deleted or damaged since it was listed
            return None
        errors = state.get("errors") if isinstance(state, dict) else None
        return len(errors) if isinstance(errors, list) else 0


def _status(record: JobRecord) -> str:
    # A row that cannot be decoded is listed as ``damaged``, as `routilux jobs` does.
    return "damaged" if record.damaged is not None else record.status

"""
Server-sent events of every job (``/api/events``) and of one (``/api/jobs/{id}/events``).

The store tells no one of a change: they are read by polling it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse

from routilux.exceptions import JobNotFoundError, JobStoreError

from ._job_listing import JobIndex, Snapshot


__all__ = ["event_stream", "job_changes", "jobs_changes", "sse"]

_HEARTBEAT = 15.0
"""Seconds between two comments sent to an idle stream (so a closed one is noticed)."""


def sse(event: str, data: Any) -> bytes:
    """
    Return one server-sent event: its name and its data as one line of JSON.
    """
    text = json.dumps(data, ensure_ascii=False, default=str)
    return f"event: {event}\ndata: {text}\n\n".encode()


def event_stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    """
    Return a streaming response of server-sent events (never cached, never buffered).
    """
    return StreamingResponse(
        chunks,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def jobs_changes(
    index: JobIndex, interval: float, closing: threading.Event
) -> AsyncIterator[bytes]:
    """
    Yield a ``jobs`` event with the counts per status at once, then one with the rows that
    changed (new, other status, other update time or control request) and the counts every
    time the store's listing changes, until ``closing`` is set.
    """
    yield b"retry: 2000\n\n"
    last: Snapshot | None = None
    quiet = 0.0
    while not closing.is_set():
        snap = await anyio.to_thread.run_sync(index.snapshot, interval)
        if last is None or (snap is not last and snap.marks != last.marks):
            # The first event has the counts only: the baseline later ones are changes to.
            old = snap.marks if last is None else last.marks
            changed = [
                {
                    "job_id": r.job_id,
                    "status": r.status,
                    "updated_at": r.updated_at,
                    "requested": r.requested,
                }
                for r in snap.records
                if old.get(r.job_id) != snap.marks[r.job_id]
            ]
            counts: dict[str, int] = {}
            for status, _, _ in snap.marks.values():
                counts[status] = counts.get(status, 0) + 1
            removed = [job_id for job_id in old if job_id not in snap.marks]
            yield sse("jobs", {"changed": changed, "removed": removed, "counts": counts})
            quiet = 0.0
        elif quiet >= _HEARTBEAT:
            yield b": ping\n\n"
            quiet = 0.0
        last = snap
        # A listing that takes long is read less often: at most a tenth of the time (a store
        # of 10,000 jobs takes about 0.1 s to list, so once a second).
        pause = max(interval, 10 * snap.took)
        quiet += pause
        await anyio.sleep(pause)


async def job_changes(
    load: Callable[[], dict[str, Any]], interval: float, closing: threading.Event
) -> AsyncIterator[bytes]:
    """
    Yield a ``job`` event with the job's detail (as ``load()`` returns it) at once and every
    time its status, update time or control request changes, until ``closing`` is set; a
    ``gone`` event and the end when the job is deleted.
    """
    yield b"retry: 2000\n\n"
    mark: tuple[Any, ...] | None = None
    quiet = 0.0
    while not closing.is_set():
        try:
            detail = await anyio.to_thread.run_sync(load)
        except JobNotFoundError as exc:
            yield sse("gone", {"error": str(exc)})
            return
        except JobStoreError as exc:  # damaged, or the store is down for a moment
            yield sse("problem", {"error": str(exc)})
            detail = None
        if detail is not None:
            now = (detail["status"], detail["updated_at"], detail["requested"], detail["note"])
            if now != mark:
                mark = now
                quiet = 0.0
                yield sse("job", detail)
        if quiet >= _HEARTBEAT:
            yield b": ping\n\n"
            quiet = 0.0
        quiet += interval
        await anyio.sleep(interval)

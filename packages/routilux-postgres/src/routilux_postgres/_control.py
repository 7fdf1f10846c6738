"""
The control channel of a worker process: one listener thread keeps each running job's
pause/cancel flag and heartbeat up to date, so the scheduler's poll never touches the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from routilux.store import JobControl
from routilux_postgres._store import CONTROL_CHANNEL, PostgresJobStore


__all__ = ["ControlHub", "HubControl"]

_log = structlog.get_logger("routilux.postgres")


class HubControl(JobControl):
    """
    The :class:`~routilux.store.JobControl` of one job run by a worker: :meth:`poll` reads an
    in-memory flag that the :class:`ControlHub` thread sets, so it never blocks.

    Args:
        job_id: The job.
        should_abort: Also polled (a dictionary look-up in procrastinate): when it returns
            true, the job is paused if ``shutdown`` says the worker is stopping, else cancelled.
        shutdown: Returns true when the abort comes from the worker shutting down.
    """

    def __init__(
        self,
        job_id: str,
        *,
        should_abort: Callable[[], bool] | None = None,
        shutdown: Callable[[], bool] | None = None,
    ) -> None:
        #: The job.
        self.job_id = job_id
        self._should_abort = should_abort
        self._shutdown = shutdown
        self._request: str | None = None
        self._delivered: str | None = None
        #: True once the job was paused because its worker is shutting down.
        self.paused_for_shutdown = False

    def set_request(self, request: str | None) -> None:
        """
        Record a control request heard from the database (``None`` is ignored).
        """
        if request is not None:
            self._request = request

    def poll(self) -> str | None:
        """
        Return ``"pause"`` or ``"cancel"`` once per request, else ``None``; never blocks.
        """
        request = self._request
        if request is None and self._should_abort is not None and self._should_abort():
            if self._shutdown is not None and self._shutdown():
                self.paused_for_shutdown = True
                request = "pause"
            else:
                request = "cancel"
        if request is None or request == self._delivered:
            return None
        self._delivered = request
        return request


class ControlHub:
    """
    One thread per worker process that ``LISTEN``\\ s on the control channel, polls the
    control column of its running jobs every ``interval`` seconds (in case a notification is
    lost, for example on a reconnect) and writes their heartbeat as often.

    Args:
        store: The job store.
        worker: This worker's id (the one its claims record).
        interval: Seconds between two polls and heartbeats.
    """

    def __init__(self, store: PostgresJobStore, worker: str, *, interval: float = 1.0) -> None:
        self._store = store
        self._worker = worker
        self._interval = interval
        self._lock = threading.Lock()
        self._controls: dict[str, HubControl] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, control: HubControl) -> None:
        """
        Start delivering requests to ``control`` (starts the thread on first use).
        """
        with self._lock:
            self._controls[control.job_id] = control
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="routilux-control", daemon=True
                )
                self._thread.start()

    def unregister(self, control: HubControl) -> None:
        """
        Stop delivering requests to ``control``.
        """
        with self._lock:
            if self._controls.get(control.job_id) is control:
                del self._controls[control.job_id]

    def close(self) -> None:
        """
        Stop the thread.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _jobs(self) -> list[str]:
        with self._lock:
            return list(self._controls)

    def _deliver(self, requests: dict[str, str]) -> None:
        with self._lock:
            for job_id, request in requests.items():
                control = self._controls.get(job_id)
                if control is not None:
                    control.set_request(request)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001 - the listener must outlive a lost connection
                _log.warning("control_listener_error", error=repr(exc))
                self._stop.wait(self._interval)

    def _listen(self) -> None:
        conn: psycopg.Connection[Any]
        with psycopg.connect(self._store.dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {CONTROL_CHANNEL}")
            next_poll = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + self._interval
                    jobs = self._jobs()
                    if jobs:
                        self._store.heartbeat(jobs, worker=self._worker)
                        self._deliver(self._store.control_requests(jobs))
                heard = [
                    n.payload for n in conn.notifies(timeout=min(self._interval, 0.5), stop_after=1)
                ]
                # A notification only says "look": the column is the truth.
                mine = set(heard) & set(self._jobs())
                if mine:
                    self._deliver(self._store.control_requests(mine))

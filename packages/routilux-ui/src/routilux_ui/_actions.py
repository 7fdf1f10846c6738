"""
Pause, resume (with an answer), cancel and retry of stored jobs, run in background threads.

Each is checked as the lifecycle table and the ``routilux`` command check it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import structlog

from routilux import Flow, JobState
from routilux.exceptions import JobStateError
from routilux.lifecycle import TRANSITIONS, Action, allowed, next_status
from routilux.store import JobRecord, JobStore, StoreControl, run_job

from ._inbox import human_input, waiting_in
from ._job_listing import JobIndex
from ._runner_liveness import runner_alive


__all__ = ["ActionError", "Actions", "offered_actions"]


def _log(level: str, event: str, **values: Any) -> None:
    # Silent until the application configures structlog (as routilux-core is): unconfigured,
    # structlog would print every event.
    if structlog.is_configured():
        getattr(structlog.get_logger("routilux_ui"), level)(event, **values)


_ACTIONS = ("pause", "resume", "cancel", "retry")

_CLAIM_WAIT = 5.0
"""Seconds a resume or retry waits for its run to claim the job before it answers."""


class _ClaimSignal(StoreControl):
    """
    The store's control requests, telling ``started`` at the first poll: the scheduler polls
    before each activation, so the run has claimed the job by then.
    """

    def __init__(self, store: JobStore, job_id: str, started: threading.Event) -> None:
        super().__init__(store, job_id)
        self._started = started

    def poll(self) -> str | None:
        """
        Tell the waiting request the run has started, then return the store's request.
        """
        self._started.set()
        return super().poll()


class ActionError(Exception):
    """
    An action refused: ``status_code`` is the HTTP status (400, 409), the text the message.
    """

    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        #: The HTTP status of the refusal.
        self.status_code = status_code


def offered_actions(record: JobRecord, *, read_only: bool = False) -> dict[str, bool]:
    """
    Return which buttons a job's page shows: what the lifecycle table allows and changes
    (no pause of a paused job, no cancel of a cancelled one), less what the ``routilux``
    command refuses (pausing, cancelling or resuming a completed job, resuming a job whose
    runner is alive), and nothing when the page is read-only.
    """
    status = record.status
    offered = {
        name: not read_only
        and allowed(status, name)
        and TRANSITIONS[(status, Action(name))] != status
        for name in _ACTIONS
    }
    if status == "completed":
        offered.update(pause=False, cancel=False, resume=False)
    if status == "running" and runner_alive(record):
        offered["resume"] = False
    return offered


class Actions:
    """
    The actions of a page on ``store``; ``run_job`` runs resumed and retried jobs in threads
    of this process.
    """

    def __init__(self, store: JobStore, index: JobIndex) -> None:
        self._store = store
        self._index = index
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        #: ``job_id -> message``: why the last run started here did not run (shown on its page).
        self.failures: dict[str, str] = {}

    def running_here(self, job_id: str) -> bool:
        """
        Tell whether a run of ``job_id`` started by this page is still going.
        """
        with self._lock:
            thread = self._threads.get(job_id)
            return thread is not None and thread.is_alive()

    def control(self, job_id: str, action: Action) -> dict[str, Any]:
        """
        Pause or cancel a job: a running one through a request its runner applies at its next
        activation boundary, any other at once in the store.

        Raises:
            JobNotFoundError: No such job.
            ActionError: The job is completed, or the lifecycle refuses the action (409).
        """
        verb = action.value
        record = self._store.load_job(job_id)
        status = record.status
        if status == "completed":
            msg = f"job {job_id} is completed; nothing to {verb}"
            raise ActionError(msg)
        target = _next(status, action, job_id)
        requested = None
        if status == "running" and (self.running_here(job_id) or runner_alive(record)):
            self._store.request_control(job_id, verb)
            requested = verb
        elif target != status:
            self._store.set_status(job_id, target)
            status = target
        self._index.invalidate()
        return {"job_id": job_id, "action": verb, "status": status, "requested": requested}

    def resume(
        self, job_id: str, values: Mapping[str, Any], routine_id: str | None = None
    ) -> dict[str, Any]:
        """
        Answer the job's waiting ``HumanInput`` with ``values`` (when given) and run it on
        in a background thread; return once the run has claimed the job (its status then).

        Raises:
            JobNotFoundError: No such job.
            ActionError: The job cannot be resumed (409), or the values name no waiting
                routine unambiguously (400 or 409).
        """
        record = self._store.load_job(job_id)
        takeover = False
        if record.status == "running":
            if self.running_here(job_id) or runner_alive(record):
                where = "this page" if self.running_here(job_id) else record.worker
                msg = f"job {job_id} is running (on {where}); nothing to resume"
                raise ActionError(msg)
            takeover = True
        elif record.status == "completed":
            msg = f"job {job_id} is completed; nothing to resume"
            raise ActionError(msg)
        else:
            _next(record.status, Action.RESUME, job_id)
        prepare = None
        if values:
            target = _answer_target(job_id, record, routine_id)
            answer = dict(values)

            def prepare(flow: Flow, job_state: JobState) -> None:
                cls = human_input()
                if cls is not None:
                    cls.provide_answer(job_state, target, **answer)

        status = self._start(job_id, "resume", prepare=prepare, takeover=takeover)
        return {"job_id": job_id, "action": "resume", "status": status, "requested": None}

    def retry(self, job_id: str) -> dict[str, Any]:
        """
        Run a failed job again in a background thread; return once the run has claimed the
        job (its status then).

        Raises:
            JobNotFoundError: No such job.
            ActionError: The job is not failed (409).
        """
        record = self._store.load_job(job_id)
        _next(record.status, Action.RETRY, job_id)
        status = self._start(job_id, "retry", retry=True)
        return {"job_id": job_id, "action": "retry", "status": status, "requested": None}

    def _start(self, job_id: str, verb: str, **options: Any) -> str:
        # Run the job in a thread; return its status once the run claimed it (or ended, or
        # did not start within _CLAIM_WAIT seconds).
        started = threading.Event()
        options["control"] = _ClaimSignal(self._store, job_id, started)
        with self._lock:
            thread = self._threads.get(job_id)
            if thread is not None and thread.is_alive():
                msg = f"job {job_id} is running (on this page); nothing to {verb}"
                raise ActionError(msg)
            thread = threading.Thread(
                target=self._run,
                args=(job_id, verb, options, started),
                name=f"routilux-ui-{verb}-{job_id}",
                daemon=True,
            )
            self._threads[job_id] = thread
            self.failures.pop(job_id, None)
            thread.start()
        started.wait(_CLAIM_WAIT)
        self._index.invalidate()
        return self._store.load_job(job_id).status

    def _run(
        self, job_id: str, verb: str, options: dict[str, Any], started: threading.Event
    ) -> None:
        try:
            job_state = run_job(job_id, self._store, **options)
        except Exception as exc:  # noqa: BLE001  # a thread's failure is shown on the job's page
            self.failures[job_id] = f"{verb} did not run: {type(exc).__name__}: {exc}"
            _log("warning", "ui_run_failed", job_id=job_id, action=verb, error=str(exc))
        else:
            _log("info", "ui_run_rested", job_id=job_id, action=verb, status=job_state.status)
        finally:
            started.set()
            self._index.invalidate()

    def shutdown(self, timeout: float = 10.0) -> None:
        """
        Ask every job run here to pause, and wait up to ``timeout`` seconds for each to rest,
        so that none is left running without a runner.
        """
        with self._lock:
            threads = dict(self._threads)
        for job_id, thread in threads.items():
            if thread.is_alive():
                try:
                    self._store.request_control(job_id, "pause")
                except Exception as exc:  # noqa: BLE001  # the store may be closing; say so
                    _log("warning", "ui_pause_failed", job_id=job_id, error=str(exc))
        for thread in threads.values():
            thread.join(timeout)


def _next(status: str, action: Action, job_id: str) -> str:
    try:
        return next_status(status, action, job_id=job_id)
    except JobStateError as exc:
        raise ActionError(str(exc)) from None


def _answer_target(job_id: str, record: JobRecord, routine_id: str | None) -> str:
    # The HumanInput routine the values answer: the one named, else the only one waiting.
    waiting = waiting_in(record.state)
    listed = ", ".join(sorted(waiting)) or "none"
    if routine_id is None:
        if len(waiting) != 1:
            msg = (
                f"job {job_id} waits for input in {len(waiting)} routines ({listed}); "
                'name one with "routine_id"'
            )
            raise ActionError(msg, 409 if not waiting else 400)
        return next(iter(waiting))
    if routine_id not in waiting:
        msg = f"routine {routine_id!r} of job {job_id} waits for no input (waiting: {listed})"
        raise ActionError(msg)
    return routine_id

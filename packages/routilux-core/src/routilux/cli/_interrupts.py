"""
What ``routilux run`` and ``resume`` do on Ctrl-C and SIGTERM: pause the job gracefully
the first time, exit at once the second time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from routilux.engine._control import JobControl


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.model._job_state import JobState

__all__ = ["EXIT_INTERRUPTED", "Interrupts"]

EXIT_INTERRUPTED = 130
"""Exit code: a second Ctrl-C or SIGTERM ended the command at once (the job stays
resumable); 128 + SIGINT, as a shell reports a command killed by Ctrl-C."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts(JobControl):
    """
    The control of a job run by the command line: the store's remote requests (``inner``),
    and a pause asked for by the first SIGINT or SIGTERM. That pause lets running handlers
    finish, checkpoints the job and leaves it ``paused``, so the command ends with the
    paused outcome (exit 3) and the command that resumes it. A second signal ends the
    process at once (exit 130); the job stays ``running`` under a dead process, which
    ``routilux resume`` takes over (re-running what ran since its last checkpoint).

    Args:
        inner: The store's control of the job, asked when no interrupt is pending.
        job_id: Named in the messages.
        hint: Gives the command that resumes the job (for the second signal's message).
        err: Where the messages go.
    """

    def __init__(
        self, inner: JobControl, job_id: str, hint: Callable[[], str], err: Any = None
    ) -> None:
        self._inner = inner
        self._job_id = job_id
        self._hint = hint
        self._err = err if err is not None else sys.stderr
        self._lock = threading.Lock()
        self._signals = 0
        self._asked = False
        self._job: tuple[Flow, JobState] | None = None

    def attach(self, flow: Flow, job_state: JobState) -> None:
        """
        Know the job's flow and state, so that a signal can pause a running job at once.
        """
        with self._lock:
            self._job = (flow, job_state)

    def poll(self) -> str | None:
        """
        Return ``"pause"`` once after the first signal (if the job was not paused directly),
        else the store's request.
        """
        with self._lock:
            if self._signals and not self._asked:
                self._asked = True
                return "pause"
        return self._inner.poll()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        with self._lock:
            self._signals += 1
            first = self._signals == 1
            job = self._job
        if not first:
            print(
                f"routilux: {name} again: exiting now; job {self._job_id} stays resumable: "
                f"{self._hint()}",
                file=self._err,
                flush=True,
            )
            os._exit(EXIT_INTERRUPTED)
        print(
            f"routilux: {name}: pausing job {self._job_id} (running handlers finish, then it is "
            "checkpointed); interrupt again to exit at once",
            file=self._err,
            flush=True,
        )
        if job is not None and job[1].status == "running":
            # A running job pauses now, from a thread: pause waits for its running handlers,
            # which a signal handler must not do. Otherwise the scheduler asks poll().
            with self._lock:
                self._asked = True
            flow, job_state = job
            threading.Thread(
                target=_pause, args=(flow, job_state, name), name="routilux-interrupt"
            ).start()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """
        Handle SIGINT and SIGTERM this way inside the block (in the main thread only; in any
        other thread the block runs with the signals as they are).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {sig: signal.signal(sig, self._handle) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def _pause(flow: Flow, job_state: JobState, name: str) -> None:
    from routilux.exceptions import JobStateError

    # A job that finished or failed meanwhile keeps its outcome.
    with contextlib.suppress(JobStateError):
        flow.pause(job_state, f"interrupted ({name})")

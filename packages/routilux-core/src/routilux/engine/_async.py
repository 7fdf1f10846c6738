"""
The coroutine lane of a job: its coroutine activations on an event loop, and awaiting it.

Coroutine activations run on the job's event loop (the caller's under ``aexecute``, else
the background loop of :mod:`routilux.model._loop`); a gate bounds a flow's coroutine
activations across loops. The lane knows a job's run only through :class:`LaneRun` (and
:class:`AwaitedRun` to await it): the engine's ``JobRun`` implements both.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from routilux._util._log import repr_of
from routilux.engine import _timeouts
from routilux.model._context import ActiveRun, Frame, set_frame
from routilux.model._loop import background_loop
from routilux.model._slot import timeout_of


if TYPE_CHECKING:
    import contextvars

    from routilux.engine._activation import Activation

__all__ = [
    "AsyncGate",
    "AwaitedRun",
    "CoroActivation",
    "LaneRun",
    "interrupt_locked",
    "running_loop",
    "spawn_locked",
    "wait_for_job",
]


class LaneRun(ActiveRun, _timeouts.TimedRun, Protocol):
    """
    What the coroutine lane needs of a job's run: the engine's interface to the lane. The
    run's condition (:attr:`cond`) guards every attribute here.
    """

    #: The event loop of the job's coroutine activations (``None``: the background loop).
    loop: asyncio.AbstractEventLoop | None
    #: The coroutine activations handed to the loop and not finished yet.
    coros: set[CoroActivation]
    #: The job was cancelled (its coroutines are cancelled too).
    cancelled: bool
    #: The job failed (nothing new of it starts).
    failed: bool

    @property
    def cond(self) -> threading.Condition:
        """The job's condition, on the job's lock."""

    @property
    def context(self) -> contextvars.Context:
        """The contextvars every activation of the job runs in (a copy of them)."""

    def async_gate(self) -> AsyncGate:
        """The bound on the flow's coroutine activations."""

    def begin(self, act: Activation) -> float:
        """Book the start of an activation; return its start time."""

    def prepare(self, act: Activation) -> Any:
        """Return the data the activation's handler gets (merge errors propagate)."""

    def succeeded(self, act: Activation, t0: float) -> None:
        """Book an activation that succeeded."""

    def interrupted(self, act: Activation, t0: float, exc: BaseException, requeued: bool) -> None:
        """Book an activation a pause (``requeued``) or a cancel of the job stopped."""

    def coroutine_done(self, counted: bool) -> bool:
        """
        With the lock held: a coroutine activation is over (``counted``: its handler was
        called); book it, and tell whether the job is to be handed to the pool now.
        """

    def hand_off(self) -> None:
        """Hand the job to the flow's worker pool."""


class AwaitedRun(Protocol):
    """
    What :func:`wait_for_job` needs of a job's run.
    """

    @property
    def in_flight(self) -> int:
        """Activations taken from the queue and not finished yet."""

    def is_settled(self) -> bool:
        """Finished, cancelled, or paused with nothing running (with the lock held)."""

    def when(self, predicate: Callable[[], bool], callback: Callable[[], None]) -> None:
        """Call ``callback`` once ``predicate`` holds (both with the lock held)."""

    def pause(self, reason: str, checkpoint: dict[str, Any] | None) -> None:
        """Pause the job."""

    def cancel(self, reason: str) -> None:
        """Cancel the job."""


class AsyncGate:
    """
    A semaphore for coroutines that may run on different event loops: at most ``limit``
    holders at once, served in FIFO order (a flow's ``max_async``).

    Waiters are futures of their own loops, woken with ``call_soon_threadsafe``.
    """

    def __init__(self, limit: int) -> None:
        #: How many holders at once.
        self.limit = limit
        self._lock = threading.Lock()
        self._busy = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def busy(self) -> int:
        """
        How many holders there are now.
        """
        return self._busy

    async def acquire(self) -> None:
        """
        Wait for a free place (cancellable while waiting).
        """
        with self._lock:
            if self._busy < self.limit and not self._waiters:
                self._busy += 1
                return
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (loop, waiter)
            self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove(entry)
                    granted = False
                except ValueError:
                    granted = True
            if granted:
                # The place was handed over as we were cancelled: pass it on.
                self.release()
            raise

    def release(self) -> None:
        """
        Give a place back, handing it to the oldest waiter if there is one.
        """
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_grant, waiter)
                except RuntimeError:  # that loop is closed: its waiter is gone
                    continue
                return
            self._busy -= 1


def _grant(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# -- the coroutine lane of a job ------------------------------------------------------


def running_loop() -> asyncio.AbstractEventLoop | None:
    """
    Return the event loop running on this thread, or ``None``.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@attrs.define(eq=False, slots=True)
class CoroActivation:
    """
    One coroutine activation between leaving its job's queue and finishing on a loop.
    """

    act: Activation
    #: The task running it, once the loop has created it.
    task: asyncio.Task[None] | None = None
    #: The handler was called (its routine was marked running).
    started: bool = False
    #: Pause put the activation back into ``pending_tasks``: it runs again on resume.
    requeued: bool = False


def _job_loop(run: LaneRun) -> asyncio.AbstractEventLoop:
    loop = run.loop
    if loop is None or loop.is_closed() or not loop.is_running():
        # The caller's loop of an earlier ``aexecute`` is gone (a resumed job, say).
        loop = run.loop = background_loop()
    return loop


def spawn_locked(run: LaneRun, act: Activation) -> None:
    """
    Start a coroutine activation on the job's loop; the caller holds the job's lock and has
    counted the activation in ``in_flight``. It never waits for the coroutine.
    """
    coro = CoroActivation(act)
    run.coros.add(coro)
    _job_loop(run).call_soon_threadsafe(_create_task, run, coro, context=run.context.copy())


def _create_task(run: LaneRun, coro: CoroActivation) -> None:
    # On the loop, in a copy of the job's context (which the task copies again).
    with run.cond:
        stopped = coro.requeued or run.cancelled or run.failed
        if not stopped:
            coro.task = task = asyncio.get_running_loop().create_task(_activation(run, coro))
    if stopped:
        _finished(run, coro)
        return
    task.add_done_callback(lambda _task: _finished(run, coro))


async def _activation(run: LaneRun, coro: CoroActivation) -> None:
    # The task of one coroutine activation: the same steps and bookkeeping as for a sync
    # handler, with the handler awaited on this loop.
    act = coro.act
    gate = run.async_gate()
    await gate.acquire()
    try:
        with run.cond:
            if coro.requeued or run.cancelled or run.failed:
                return
            coro.started = True
        set_frame(Frame(run, act))
        slot = act.slot
        t0 = run.begin(act)
        try:
            merged = run.prepare(act)
            call = slot.caller
            if call is not None:
                timeout = timeout_of(slot)
                if timeout is not None:
                    _timeouts.arm(run, act, timeout, t0, coro.task)
                await call(merged)
        except asyncio.CancelledError as exc:
            if act.watch is None or _timeouts.settle(run, act):
                _cancelled(run, coro, exc, t0)
            else:
                run.on_error(act, _timeouts.timeout_error(act), t0)
        except Exception as exc:  # noqa: BLE001 - the error strategy decides, as for sync
            if act.watch is None or _timeouts.settle(run, act):
                run.on_error(act, exc, t0)
            else:
                run.on_error(act, _timeouts.timeout_error(act), t0)
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt must not kill the loop
            run.on_error(act, exc, t0, fatal=True)
        else:
            if act.watch is None or _timeouts.settle(run, act):
                run.succeeded(act, t0)
            else:
                # It swallowed the cancellation: it timed out all the same.
                run.on_error(act, _timeouts.timeout_error(act), t0)
    finally:
        gate.release()


def _cancelled(run: LaneRun, coro: CoroActivation, exc: asyncio.CancelledError, t0: float) -> None:
    # The handler let a CancelledError out: from a pause (it runs again on resume), from a
    # cancel, or from elsewhere (then it is an error of the handler like any other).
    with run.cond:
        requeued, cancelled = coro.requeued, run.cancelled
    if requeued or cancelled:
        run.interrupted(coro.act, t0, exc, requeued)
    else:
        run.on_error(coro.act, exc, t0)


def _finished(run: LaneRun, coro: CoroActivation) -> None:
    # On the loop, once the activation is over (or was stopped before it began): the
    # bookkeeping a worker does after a sync handler, then hand the job on.
    with run.cond:
        run.coros.discard(coro)
        if not coro.started and not (coro.requeued or run.cancelled or run.failed):
            # Cancelled from outside before it began (its loop shutting down, say).
            run.log.warning(
                "async_activation_dropped",
                routine_id=coro.act.routine_id,
                slot=coro.act.slot.name,
            )
        push = run.coroutine_done(coro.started)
    if push:
        try:
            run.hand_off()
        except Exception as exc:  # noqa: BLE001 - the flow was shut down under the job
            run.log.error("async_handoff_failed", error=repr_of(exc))


def interrupt_locked(run: LaneRun, *, requeue: bool) -> list[Activation]:
    """
    Cancel the job's coroutine activations (all but the calling one); with ``requeue``
    (a pause), mark them to run again and return their activations in queue order.
    The caller holds the job's lock.
    """
    if not run.coros:
        return []
    current = asyncio.current_task() if running_loop() is not None else None
    hit: list[CoroActivation] = []
    for coro in run.coros:
        task = coro.task
        if coro.requeued or (task is not None and task is current):
            continue
        if requeue:
            coro.requeued = True
        hit.append(coro)
        if task is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop runs nothing any more
                task.get_loop().call_soon_threadsafe(task.cancel)
    hit.sort(key=lambda c: c.act.seq)
    return [c.act for c in hit] if requeue else []


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _notify(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None]) -> Callable[[], None]:
    def notify() -> None:
        loop.call_soon_threadsafe(_resolve, waiter)

    return notify


async def wait_for_job(
    run: AwaitedRun, timeout: float | None, on_cancel: str, cancel_timeout: float
) -> None:
    """
    Wait on the calling loop until the job settles (finished, cancelled, or paused with
    nothing running) or ``timeout`` passes. If the waiting task is cancelled, cancel (or
    pause, per ``on_cancel``) the job, give its handlers up to ``cancel_timeout`` seconds
    to stop, and re-raise.
    """
    loop = asyncio.get_running_loop()
    settled: asyncio.Future[None] = loop.create_future()
    run.when(run.is_settled, _notify(loop, settled))
    try:
        if timeout is None:
            await settled
        else:
            try:
                await asyncio.wait_for(asyncio.shield(settled), timeout)
            except asyncio.TimeoutError:
                return
    except asyncio.CancelledError:
        if on_cancel == "pause":
            run.pause("aexecute cancelled", None)
        else:
            run.cancel("aexecute cancelled")
        idle: asyncio.Future[None] = loop.create_future()
        run.when(lambda: run.is_settled() and run.in_flight == 0, _notify(loop, idle))
        handle = loop.call_later(cancel_timeout, _resolve, idle)
        try:
            await idle
        finally:
            handle.cancel()
        raise

"""
Slot timeouts, on the flow's timer (the one of retry back-offs and deadlines too).

An activation whose slot has a timeout (:func:`routilux.model._slot.timeout_of`) runs with
a :class:`Watch` armed on the flow's timer. When the timer fires first, the activation
has timed out: a coroutine is cancelled, and its task reports
:class:`~routilux.exceptions.ActivationTimeout` to the error path; a sync handler cannot be
stopped, so the timer reports it at once and the handler's late return (or error) and the
events it emits from then on are discarded, each discard recorded in the job's history
(``late_result_discarded``, with ``emits_discarded``). Its worker stays taken, and the
activation counts as running, until the handler returns.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from routilux._util._log import repr_of
from routilux.exceptions import ActivationTimeout


if TYPE_CHECKING:
    import asyncio

    from routilux.engine._activation import Activation
    from routilux.engine._runtime import RunHost
    from routilux.model._context import ActivationView
    from routilux.model._event import Event
    from routilux.model._job_state import JobState

__all__ = ["TimedRun", "Watch", "arm", "discard_emit", "late", "settle", "timeout_error"]


class TimedRun(Protocol):
    """
    What a slot's timeout needs of a job's run (the engine's ``JobRun``).
    """

    @property
    def lock(self) -> contextlib.AbstractContextManager[Any]:
        """The job's lock."""

    @property
    def host(self) -> RunHost:
        """The flow, as the run uses it (its timer)."""

    @property
    def job_state(self) -> JobState:
        """The job's state."""

    @property
    def log(self) -> Any:
        """The job's bound logger."""

    def on_error(self, act: Activation, exc: BaseException, t0: float, fatal: bool = False) -> None:
        """Send a handler's error down the job's error path."""


@attrs.define(eq=False, slots=True)
class Watch:
    """
    The timeout of one running activation (guarded by its job's lock).
    """

    #: The timeout, in seconds.
    timeout: float
    #: When the handler started (epoch seconds, as its booking has it).
    t0: float
    #: The coroutine's task to cancel, or ``None`` for a sync handler.
    task: asyncio.Task[None] | None = None
    #: The timer's handle.
    handle: int = -1
    #: The timer fired first: the activation timed out.
    expired: bool = False
    #: The handler ended before the timer fired.
    done: bool = False
    #: Events the handler emitted after it timed out (discarded).
    emits: int = 0


def arm(
    run: TimedRun,
    act: Activation,
    timeout: float,
    t0: float,
    task: asyncio.Task[None] | None = None,
) -> None:
    """
    Start the timeout of ``act`` (its handler starts now; ``task`` runs it if a coroutine).
    """
    watch = act.watch = Watch(timeout, t0, task)
    watch.handle = run.host.timer().call_later(timeout, functools.partial(_expire, run, act))


def settle(run: TimedRun, act: Activation) -> bool:
    """
    The handler of ``act`` ended: stop its timeout; ``False`` when it had timed out
    already (its result is late: see :func:`late`).
    """
    watch = act.watch
    assert watch is not None
    with run.lock:
        if watch.expired:
            return False
        watch.done = True
    timer = run.host.started_timer()
    if timer is not None:
        timer.cancel(watch.handle)
    return True


def timeout_error(act: Activation) -> ActivationTimeout:
    """
    The error of ``act`` timing out.
    """
    watch = act.watch
    assert watch is not None
    rid = act.routine_id or ""
    where = f"{rid}.{act.slot.name}"
    msg = f"the handler of slot {where!r} ran past its timeout of {watch.timeout:g} s"
    return ActivationTimeout(msg, routine_id=rid, slot=act.slot.name, timeout=watch.timeout)


def _expire(run: TimedRun, act: Activation, handle: int) -> None:
    # On the timer: the timeout of ``act`` passed before its handler ended.
    watch = act.watch
    with run.lock:
        if watch is None or watch.done or watch.expired or watch.handle != handle:
            return
        watch.expired = True
    task = watch.task
    if task is not None:
        # Its task reports the timeout once the coroutine is cancelled (see _async).
        with contextlib.suppress(RuntimeError):  # a closed loop runs nothing any more
            task.get_loop().call_soon_threadsafe(task.cancel)
        return
    run.on_error(act, timeout_error(act), watch.t0)


def late(run: TimedRun, act: Activation, error: BaseException | None) -> None:
    """
    Record the discarded late return (or ``error``) of ``act``'s handler after its timeout.
    """
    watch = act.watch
    assert watch is not None
    rid = act.routine_id
    with run.lock:
        emits = watch.emits
    data: dict[str, Any] = {
        "slot": act.slot.name,
        "attempt": act.attempt + 1,
        "timeout": watch.timeout,
        "emits_discarded": emits,
    }
    if error is not None:
        data["error"] = repr_of(error)
    run.job_state.record_execution(rid or "", "late_result_discarded", data)
    run.log.warning("late_result_discarded", routine_id=rid, **data)


def discard_emit(run: TimedRun, act: ActivationView, event: Event) -> bool:
    """
    Tell whether an event ``act``'s handler emits is to be discarded (it timed out),
    counting it.
    """
    watch = act.watch
    assert watch is not None
    with run.lock:
        if not watch.expired:
            return False
        watch.emits += 1
    run.log.debug("late_emit_discarded", routine_id=act.routine_id, event=event.name)
    return True

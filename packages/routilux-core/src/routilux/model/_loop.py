"""
The process-wide background event loop that coroutine handlers run on outside the caller's
loop, and the bridge for sync code that must call async code (:func:`run_async`).

Coroutine activations never hold a worker thread and never get a loop of their own. Under
``flow.execute()`` or ``flow.submit()`` they run on the loop returned by
:func:`background_loop`, a daemon thread named ``routilux-async`` started on first use and
shared by every flow and job of the process, so async clients cached across jobs stay
bound to one loop. Under ``await flow.aexecute()`` they run on the caller's loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from routilux.exceptions import ExecutionContextError
from routilux.model._context import current_frame


__all__ = [
    "LOOP_THREAD_NAME",
    "background_loop",
    "on_event_loop",
    "refuse_standalone_on_loop",
    "run_async",
    "shutdown_background_loop",
]

_T = TypeVar("_T")

#: The name of the background loop's thread.
LOOP_THREAD_NAME = "routilux-async"

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_atexit_registered = False


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        # Give cancelled tasks one chance to run their cleanup, then close the loop.
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def background_loop() -> asyncio.AbstractEventLoop:
    """
    Return the process-wide background event loop, starting its thread on first use.

    The loop runs in a daemon thread named ``routilux-async`` until the interpreter
    exits (or :func:`shutdown_background_loop` is called); a later call starts a new one.
    """
    global _loop, _thread, _atexit_registered
    loop = _loop
    if loop is not None:
        return loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_serve, args=(loop, ready), name=LOOP_THREAD_NAME, daemon=True
            )
            thread.start()
            ready.wait()
            _thread = thread
            _loop = loop
            if not _atexit_registered:
                atexit.register(shutdown_background_loop)
                _atexit_registered = True
        return _loop


def shutdown_background_loop(timeout: float | None = 5.0) -> None:
    """
    Stop the background loop: cancel its tasks, let their cleanup run, close the loop
    and join its thread (waiting at most ``timeout`` seconds). Called at interpreter exit.
    """
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop = _thread = None
    if loop is None or thread is None:
        return
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # already closed
        return
    if thread is not threading.current_thread():
        thread.join(timeout)


def _forget_after_fork() -> None:
    # The loop thread does not exist in a forked child: start a new one there on demand.
    global _loop, _thread
    _loop = _thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def on_event_loop() -> bool:
    """
    Tell whether the calling thread is running an asyncio event loop right now.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _loop_for_caller() -> asyncio.AbstractEventLoop:
    # The loop of the job the caller runs for (the caller's loop under aexecute), else the
    # background loop.
    frame = current_frame()
    if frame is not None:
        loop = frame.run.loop
        if loop is not None and not loop.is_closed():
            return loop
    return background_loop()


def run_async(coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """
    Run ``coro`` to completion from sync code and return its result (or raise its error).

    This is the bridge for a sync handler that must call async code: the coroutine runs on
    the loop of the job the handler runs for (the caller's loop under ``aexecute``, the
    background loop otherwise), so async clients shared with ``async def`` handlers stay on
    their loop. The calling thread's contextvars are visible in the coroutine.

    Args:
        coro: The coroutine to run.
        timeout: Seconds to wait at most; then the coroutine is cancelled.

    Returns:
        What the coroutine returned.

    Raises:
        ExecutionContextError: Called on a thread that runs an event loop, where waiting
            for the coroutine would block (and deadlock) that loop; ``await`` it instead.
        TimeoutError: ``timeout`` passed first.
    """
    if on_event_loop():
        coro.close()
        msg = (
            "run_async() blocks and cannot be called on a thread that runs an asyncio event "
            "loop (it would deadlock that loop); 'await' the coroutine there instead"
        )
        raise ExecutionContextError(msg)
    loop = _loop_for_caller()
    result: concurrent.futures.Future[_T] = concurrent.futures.Future()
    tasks: list[asyncio.Task[_T]] = []

    def start() -> None:
        if not result.set_running_or_notify_cancel():
            coro.close()
            return
        task = loop.create_task(coro)
        tasks.append(task)
        task.add_done_callback(lambda t: _copy_outcome(t, result))

    def stop() -> None:
        if tasks:
            tasks[0].cancel()

    loop.call_soon_threadsafe(start, context=contextvars.copy_context())
    try:
        return result.result(timeout)
    except concurrent.futures.TimeoutError:
        if not result.cancel():
            loop.call_soon_threadsafe(stop)
        raise


def _copy_outcome(task: asyncio.Task[_T], result: concurrent.futures.Future[_T]) -> None:
    if result.done():
        return
    if task.cancelled():
        result.set_exception(concurrent.futures.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(task.result())


def refuse_standalone_on_loop() -> None:
    """
    Refuse to run an ``async def`` slot handler on its own (``Slot.receive``) on a thread
    that runs an event loop: waiting for it there would block that loop.

    Raises:
        ExecutionContextError: This thread runs an event loop.
    """
    if on_event_loop():
        msg = (
            "an async slot handler called on its own (Slot.receive/call_handler) runs to "
            "completion on routilux's background loop and cannot be waited for on a thread "
            "that runs an event loop; await the handler itself, or run it in a job with "
            "'await flow.aexecute(...)'"
        )
        raise ExecutionContextError(msg)

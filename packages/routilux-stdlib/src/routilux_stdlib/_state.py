"""
Per-job state of the stateful built-ins, kept in the job's shared data.

Each stateful routine keeps one entry of ``job_state.shared_data`` under a key namespaced
by its type and flow routine id (``"routilux_stdlib.Batcher/<routine id>"``) and updates
it only through ``JobState.modify_shared_data`` with copy-on-write values, so concurrent
activations never lose an update and a reader always sees a complete value. The values
are plain JSON-able data, so they survive a JobState save and load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from routilux import ExecutionContext, Routine
from routilux.exceptions import ExecutionContextError


__all__ = ["require_context", "state_key", "update_state"]

_T = TypeVar("_T")

PREFIX = "routilux_stdlib."


def state_key(kind: str, routine_id: str) -> str:
    """
    Return the shared-data key of a routine's per-job state.
    """
    return f"{PREFIX}{kind}/{routine_id}"


def require_context(routine: Routine) -> ExecutionContext:
    """
    Return the routine's execution context.

    Raises:
        ExecutionContextError: The routine is not running in a job of a flow it belongs to;
            stateful built-ins keep their state in the job, so they need one.
    """
    ctx = routine.get_execution_context()
    if ctx is None:
        msg = f"{routine!r} keeps its state in the job: use it inside a flow's job, not on its own"
        raise ExecutionContextError(msg)
    return ctx


def update_state(
    ctx: ExecutionContext,
    kind: str,
    func: Callable[[dict[str, Any]], tuple[dict[str, Any], _T]],
) -> _T:
    """
    Atomically replace the routine's state by ``func(old)[0]`` and return ``func(old)[1]``.

    ``func`` gets a copy of the current state (``{}`` at first) and must not block.
    """
    result: list[_T] = []

    def apply(old: Any) -> dict[str, Any]:
        new, out = func(dict(old) if isinstance(old, dict) else {})
        result.append(out)
        return new

    ctx.job_state.modify_shared_data(state_key(kind, ctx.routine_id), apply)
    return result[-1]

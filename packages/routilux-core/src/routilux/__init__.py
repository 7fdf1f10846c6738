"""
routilux: event-driven workflows for Python.

Routines declare input slots and output events; a :class:`Flow` wires events to slots;
each :meth:`Flow.execute` runs an independent job whose runtime state lives in its
:class:`JobState`.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from routilux import builtin_routines as _builtin_routines
from routilux.engine._flow import Flow
from routilux.model import _lifecycle as lifecycle
from routilux.model._connection import Connection
from routilux.model._error_handler import ErrorHandler, ErrorStrategy
from routilux.model._event import Event
from routilux.model._history import ExecutionHistory
from routilux.model._job_state import (
    ErrorRecord,
    ExecutionRecord,
    JobState,
    JobStateChange,
    JobStatus,
)
from routilux.model._loop import run_async
from routilux.model._output import (
    CallbackOutputHandler,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
)
from routilux.model._routine import ExecutionContext, Routine
from routilux.model._slot import Slot
from routilux.model._tracker import ExecutionTracker
from routilux.plugins._hookspecs import hookimpl
from routilux.plugins._manager import PluginManager, register_plugin, unregister_plugin


__all__ = [
    "CallbackOutputHandler",
    "Connection",
    "ErrorHandler",
    "ErrorRecord",
    "ErrorStrategy",
    "Event",
    "ExecutionContext",
    "ExecutionHistory",
    "ExecutionRecord",
    "ExecutionTracker",
    "Flow",
    "JobState",
    "JobStateChange",
    "JobStatus",
    "NullOutputHandler",
    "OutputHandler",
    "PluginManager",
    "QueueOutputHandler",
    "Routine",
    "Slot",
    "hookimpl",
    "lifecycle",
    "register_plugin",
    "run_async",
    "unregister_plugin",
]

# The built-in routines (TextClipper...) are exported when routilux-stdlib, which provides them,
# is installed, so that `from routilux import *` works with and without it. find_spec locates the
# package without importing it; __getattr__ resolves the names through the registry on use.
if find_spec("routilux_stdlib") is not None:
    __all__ += _builtin_routines.__all__


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from routilux._version import __version__

        return __version__
    if name[:1].isupper():
        # Built-in routines (TextClipper...) come from routilux-stdlib through the registry.
        from routilux.names._routines import _resolve_exported_routine

        return _resolve_exported_routine(name)
    msg = f"module 'routilux' has no attribute {name!r}"
    raise AttributeError(msg)

"""
routilux: event-driven workflows for Python.

Routines declare input slots and output events; a :class:`Flow` wires events to slots;
each :meth:`Flow.execute` runs an independent job whose runtime state lives in its
:class:`JobState`.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from . import builtin_routines as _builtin_routines
from . import lifecycle
from ._async import run_async
from ._flow import Flow
from ._plugins import PluginManager, register_plugin, unregister_plugin
from .connection import Connection
from .error_handler import ErrorHandler, ErrorStrategy
from .event import Event
from .execution_tracker import ExecutionTracker
from .history import ExecutionHistory
from .hookspecs import hookimpl
from .job_state import ErrorRecord, ExecutionRecord, JobState, JobStateChange, JobStatus
from .output_handler import (
    CallbackOutputHandler,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
)
from .routine import ExecutionContext, Routine
from .slot import Slot


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
        from ._version import __version__

        return __version__
    if name[:1].isupper():
        # Built-in routines (TextClipper...) come from routilux-stdlib through the registry.
        from .registry import _resolve_exported_routine

        return _resolve_exported_routine(name)
    msg = f"module 'routilux' has no attribute {name!r}"
    raise AttributeError(msg)

"""
routilux: event-driven workflows for Python.

Routines declare input slots and output events; a :class:`Flow` wires events to slots;
each :meth:`Flow.execute` runs an independent job whose runtime state lives in its
:class:`JobState`.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from routilux import builtin_routines as _builtin_routines


if TYPE_CHECKING:
    from routilux.engine._flow import Flow
    from routilux.engine._stream import EventStream
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
    from routilux.model._stream_event import StreamEvent
    from routilux.model._tracker import ExecutionTracker
    from routilux.plugins._hookspecs import hookimpl
    from routilux.plugins._manager import PluginManager, register_plugin, unregister_plugin


# The public names and the modules that define them: each is imported on first use (as
# concurrent.futures does), so that ``import routilux`` stays cheap (a pytest plugin, a CLI
# that only parses its arguments...).
_EXPORTS: dict[str, str] = {
    "CallbackOutputHandler": "routilux.model._output",
    "Connection": "routilux.model._connection",
    "ErrorHandler": "routilux.model._error_handler",
    "ErrorRecord": "routilux.model._job_state",
    "ErrorStrategy": "routilux.model._error_handler",
    "Event": "routilux.model._event",
    "EventStream": "routilux.engine._stream",
    "ExecutionContext": "routilux.model._routine",
    "ExecutionHistory": "routilux.model._history",
    "ExecutionRecord": "routilux.model._job_state",
    "ExecutionTracker": "routilux.model._tracker",
    "Flow": "routilux.engine._flow",
    "JobState": "routilux.model._job_state",
    "JobStateChange": "routilux.model._job_state",
    "JobStatus": "routilux.model._job_state",
    "NullOutputHandler": "routilux.model._output",
    "OutputHandler": "routilux.model._output",
    "PluginManager": "routilux.plugins._manager",
    "QueueOutputHandler": "routilux.model._output",
    "Routine": "routilux.model._routine",
    "Slot": "routilux.model._slot",
    "StreamEvent": "routilux.model._stream_event",
    "hookimpl": "routilux.plugins._hookspecs",
    "register_plugin": "routilux.plugins._manager",
    "run_async": "routilux.model._loop",
    "unregister_plugin": "routilux.plugins._manager",
}

__all__ = [
    "CallbackOutputHandler",
    "Connection",
    "ErrorHandler",
    "ErrorRecord",
    "ErrorStrategy",
    "Event",
    "EventStream",
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
    "StreamEvent",
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
    # PEP 562: registered routine names resolve (TextClipper... from routilux-stdlib); a
    # built-in name whose package is missing is an ImportError saying what to install; any
    # other name is an AttributeError, so that hasattr(routilux, "Nope") is False.
    if name == "__version__":
        from routilux._version import __version__

        return __version__
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value  # the next lookup finds it directly
        return value
    if name == "lifecycle":
        return import_module("routilux.lifecycle")
    if name[:1].isupper():
        from routilux.exceptions import UnknownRoutineTypeError
        from routilux.names._routines import get_routine_class

        try:
            return get_routine_class(name)
        except UnknownRoutineTypeError:
            if name in _builtin_routines.__all__:
                msg = (
                    f"cannot import name {name!r} from 'routilux': it is not part of "
                    "routilux-core; built-in routines come from routilux-stdlib "
                    "(pip install routilux-stdlib)"
                )
                raise ImportError(msg, name=name) from None
    msg = f"module 'routilux' has no attribute {name!r}"
    raise AttributeError(msg)

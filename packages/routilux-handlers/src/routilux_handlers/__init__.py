"""
Output handlers and plugins for routilux.

- :class:`JsonLinesOutputHandler` and :class:`StructlogOutputHandler`: where
  ``send_output`` goes.
- :class:`AuditTrail`: a plugin recording every JobState change;
  :func:`rebuild_job_state` replays the records.
- :class:`OpenTelemetryPlugin` (extra ``routilux-handlers[otel]``): spans and metrics.

Nothing here is active until you use it: the ``routilux`` entry point of this package
(:mod:`routilux_handlers.hooks`) registers plugins only when the environment asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._audit import AuditTrail, read_audit_trail, rebuild_job_state
from ._output import JsonLinesOutputHandler, StructlogOutputHandler


if TYPE_CHECKING:
    from ._otel import OpenTelemetryPlugin


__all__ = [
    "AuditTrail",
    "JsonLinesOutputHandler",
    "OpenTelemetryPlugin",
    "StructlogOutputHandler",
    "read_audit_trail",
    "rebuild_job_state",
]


def __getattr__(name: str) -> Any:
    if name == "OpenTelemetryPlugin":
        try:
            from ._otel import OpenTelemetryPlugin
        except ImportError as exc:
            msg = "OpenTelemetryPlugin needs OpenTelemetry: pip install 'routilux-handlers[otel]'"
            raise ImportError(msg, name=exc.name) from exc
        return OpenTelemetryPlugin
    if name == "__version__":
        from ._version import __version__

        return __version__
    msg = f"module 'routilux_handlers' has no attribute {name!r}"
    raise AttributeError(msg)

"""
The module routilux loads through the ``routilux`` entry point of routilux-handlers.

It is inert by default: it implements only the registration hook
``routilux_register_plugins``, which returns nothing unless the environment asks for a
plugin. So having routilux-handlers installed costs nothing: no files, no logs, and no hook
call on any job's hot path (the plugin manager's relay stays ``None``).

Environment variables read when the first job of a plugin manager starts:

``ROUTILUX_AUDIT``
    A file path: register an :class:`~routilux_handlers.AuditTrail` writing JSON lines
    there. The value ``structlog`` logs the audit records as structlog events instead.
``ROUTILUX_OTEL``
    ``1``, ``true`` or ``yes``: register an :class:`~routilux_handlers.OpenTelemetryPlugin`
    using the global OpenTelemetry providers (needs ``routilux-handlers[otel]``).

In code, register the plugins yourself instead: ``routilux.register_plugin(AuditTrail(path))``.
The plugins made from the environment are shared by every plugin manager of the process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from routilux import hookimpl


__all__ = ["plugins_from_environment", "routilux_register_plugins"]

_lock = threading.Lock()
_made: dict[tuple[str, str], object] = {}


def plugins_from_environment(environ: Mapping[str, str] | None = None) -> list[object]:
    """
    Return the plugins the environment enables (the same objects on every call).
    """
    env = os.environ if environ is None else environ
    wanted: list[tuple[str, str]] = []
    audit = env.get("ROUTILUX_AUDIT", "").strip()
    if audit:
        wanted.append(("audit", audit))
    if env.get("ROUTILUX_OTEL", "").strip().lower() in ("1", "true", "yes", "on"):
        wanted.append(("otel", ""))
    found: list[object] = []
    with _lock:
        for key in wanted:
            plugin = _made.get(key)
            if plugin is None:
                plugin = _made[key] = _make(*key)
            found.append(plugin)
    return found


def _make(kind: str, value: str) -> object:
    if kind == "audit":
        from ._audit import AuditTrail

        return AuditTrail(None if value == "structlog" else value)
    from ._otel import OpenTelemetryPlugin

    return OpenTelemetryPlugin()


@hookimpl
def routilux_register_plugins() -> list[object]:
    """
    Contribute the plugins the environment enables (none by default).
    """
    return plugins_from_environment()

"""
The library's structlog logger: silent until the application configures structlog.

routilux never configures structlog itself. Until the application does, structlog's
default configuration would print every event, so the library's events are dropped
instead; once structlog is configured, they flow through the application's processors.
"""

from __future__ import annotations

from typing import Any

import structlog


__all__ = ["bind", "is_enabled", "logger"]


class _Quiet:
    """
    Drops every event; stands in for a structlog logger while structlog is unconfigured.
    """

    __slots__ = ()

    def bind(self, **_kw: Any) -> _Quiet:
        return self

    def _drop(self, *_a: Any, **_kw: Any) -> None:
        return None

    debug = info = warning = error = exception = critical = _drop


_QUIET = _Quiet()


def is_enabled() -> bool:
    """
    Tell whether the application has configured structlog (and so wants our events).
    """
    return structlog.is_configured()


class _Proxy:
    """
    Module-level logger: forwards to structlog when configured, else drops the event.
    """

    __slots__ = ()

    def bind(self, **kw: Any) -> Any:
        return bind(**kw)

    def __getattr__(self, level: str) -> Any:
        target: Any = structlog.get_logger("routilux") if is_enabled() else _QUIET
        return getattr(target, level)


logger: Any = _Proxy()
"""Log through this for events outside any job (it binds nothing)."""


def bind(**context: Any) -> Any:
    """
    Return a logger bound to ``context`` (``flow_id``, ``job_id``, ``routine_id``...),
    or a silent one when structlog is not configured.
    """
    if not is_enabled():
        return _QUIET
    return structlog.get_logger("routilux").bind(**context)

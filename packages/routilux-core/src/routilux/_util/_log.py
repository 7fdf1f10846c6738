"""
The library's structlog logger: silent until the application configures structlog.

routilux never configures structlog itself. Until the application does, structlog's
default configuration would print every event, so the library's events are dropped
instead; once structlog is configured, they flow through the application's processors.
"""

from __future__ import annotations

from typing import Any

import structlog


__all__ = ["bind", "is_enabled", "logger", "repr_of", "text_of"]


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


def text_of(value: object) -> str:
    """
    ``str(value)``, or a stand-in naming its type when that raises (a user's exception may:
    recording it must not break the job).
    """
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - any failure of a user's __str__
        return _stand_in(value)


def repr_of(value: object) -> str:
    """
    ``repr(value)``, or a stand-in naming its type when that raises.
    """
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - any failure of a user's __repr__
        return _stand_in(value)


def _stand_in(value: object) -> str:
    return f"<{type(value).__name__} object; its str() and repr() raised>"

"""
Checks of arguments users pass to the public classes; each failure names the argument.
"""

from __future__ import annotations

from collections.abc import Mapping

from routilux.exceptions import ConfigurationTypeError


__all__ = ["require_mapping"]


def require_mapping(value: object, name: str, of: str) -> None:
    """
    Raise :class:`ConfigurationTypeError` unless ``value`` is ``None`` or a mapping
    (``of`` says what it maps, for the message).
    """
    if value is not None and not isinstance(value, Mapping):
        msg = f"{name} must be a mapping of {of}, got {type(value).__name__} {value!r}"
        raise ConfigurationTypeError(msg, name=name, value=value)

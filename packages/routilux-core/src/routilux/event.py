"""
Event: a named output of a routine.

The public path of :mod:`routilux.model._event`.
"""

from __future__ import annotations

from routilux.model._event import (
    Event,
)


__all__ = [
    "Event",
]

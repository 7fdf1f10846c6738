"""
Connection: a link from an event to a slot, with optional parameter renaming.

The public path of :mod:`routilux.model._connection`.
"""

from __future__ import annotations

from routilux.model._connection import (
    Connection,
)


__all__ = [
    "Connection",
]

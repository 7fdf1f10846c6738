"""
Slot: a named input of a routine, with its handler and merge strategy.

The public path of :mod:`routilux.model._slot`.
"""

from __future__ import annotations

from routilux.model._slot import (
    MergeStrategy,
    Slot,
    merge,
)


__all__ = [
    "MergeStrategy",
    "Slot",
    "merge",
]

"""
Routine: a workflow node that declares input slots and output events.

The public path of :mod:`routilux.model._routine`.
"""

from __future__ import annotations

from routilux.model._routine import (
    ExecutionContext,
    Routine,
)


__all__ = [
    "ExecutionContext",
    "Routine",
]

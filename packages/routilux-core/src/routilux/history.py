"""
A job's execution history: :class:`ExecutionRecord` and the list-like

The public path of :mod:`routilux.model._history`.
"""

from __future__ import annotations

from routilux.model._history import (
    EmitRecord,
    ExecutionHistory,
    ExecutionRecord,
)


__all__ = [
    "EmitRecord",
    "ExecutionHistory",
    "ExecutionRecord",
]

"""
ExecutionTracker: per-job timings of routine activations and the events they emitted.

The public path of :mod:`routilux.model._tracker`.
"""

from __future__ import annotations

from routilux.model._tracker import (
    ExecutionTracker,
)


__all__ = [
    "ExecutionTracker",
]

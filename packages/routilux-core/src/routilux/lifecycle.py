"""
The job lifecycle: which action moves a job from which status to which, as one table.

The public path of :mod:`routilux.model._lifecycle`.
"""

from __future__ import annotations

from routilux.model._lifecycle import (
    ACTIONS,
    ENGINE_ACTIONS,
    STATUSES,
    TRANSITIONS,
    Action,
    allowed,
    next_status,
    restore,
    transition,
)


__all__ = [
    "ACTIONS",
    "ENGINE_ACTIONS",
    "STATUSES",
    "TRANSITIONS",
    "Action",
    "allowed",
    "next_status",
    "restore",
    "transition",
]

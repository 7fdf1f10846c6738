"""
Task types of the original library's public surface.

The public path of :mod:`routilux.model._task`.
"""

from __future__ import annotations

from routilux.model._task import (
    SlotActivationTask,
    TaskPriority,
)


__all__ = [
    "SlotActivationTask",
    "TaskPriority",
]

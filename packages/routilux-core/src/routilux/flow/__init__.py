"""
The Flow class, and the task types kept for code written against the original library.
"""

from __future__ import annotations

from routilux.engine._flow import Flow
from routilux.model._definition import EXECUTION_STRATEGIES, default_entry_slot
from routilux.model._task import SlotActivationTask, TaskPriority


__all__ = [
    "EXECUTION_STRATEGIES",
    "Flow",
    "SlotActivationTask",
    "TaskPriority",
    "default_entry_slot",
]

"""
The Flow class, and the task types kept for code written against the original library.
"""

from __future__ import annotations

from .._flow import EXECUTION_STRATEGIES, Flow
from .task import SlotActivationTask, TaskPriority


__all__ = ["EXECUTION_STRATEGIES", "Flow", "SlotActivationTask", "TaskPriority"]

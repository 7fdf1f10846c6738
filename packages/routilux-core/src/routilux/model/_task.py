"""
Task types of the original library's public surface.

The scheduler queues its own private activations; these classes remain so that code which
imports or builds them keeps working, and describe a queued delivery the same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from routilux.model._connection import Connection
    from routilux.model._job_state import JobState
    from routilux.model._slot import Slot

__all__ = ["SlotActivationTask", "TaskPriority"]


class TaskPriority(enum.Enum):
    """
    Priority labels of a task (queues are FIFO; the label is informational).
    """

    HIGH = 1
    NORMAL = 2
    LOW = 3

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TaskPriority):
            return NotImplemented
        return self.value < other.value


@dataclass
class SlotActivationTask:
    """
    "Deliver this data to this slot, through this connection, for this job."

    Attributes:
        slot: The slot that receives the data.
        data: The payload, before the connection's parameter mapping.
        connection: The connection the data travels through, if any.
        priority: A label only; queues are FIFO.
        retry_count: How many times the delivery was retried.
        max_retries: How many retries are allowed.
        created_at: When the task was created (now, unless given).
        job_state: The job the delivery belongs to.
    """

    slot: Slot
    data: dict[str, Any]
    connection: Connection | None = None
    priority: TaskPriority = TaskPriority.NORMAL
    retry_count: int = 0
    max_retries: int = 0
    created_at: datetime | None = None
    job_state: JobState | None = None

    def __post_init__(self) -> None:
        if self.created_at is None:
            self.created_at = datetime.now()

    def __lt__(self, other: SlotActivationTask) -> bool:
        return self.priority < other.priority

"""
JobState: everything that changes while one job of a flow runs, and its records.

The public path of :mod:`routilux.model._job_state`.
"""

from __future__ import annotations

from routilux.model._job_state import (
    FINAL_STATUSES,
    ChangeKind,
    ErrorRecord,
    ExecutionRecord,
    JobState,
    JobStateChange,
    JobStatus,
)
from routilux.names._routines import register_serializable


__all__ = [
    "FINAL_STATUSES",
    "ChangeKind",
    "ErrorRecord",
    "ExecutionRecord",
    "JobState",
    "JobStateChange",
    "JobStatus",
    "register_serializable",
]

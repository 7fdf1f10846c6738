"""
The exit codes of the ``routilux`` command, and its defaults.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    pass


__all__ = [
    "COMMANDS_ENTRY_POINT_GROUP",
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_STORE",
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_CANCELLED",
    "EXIT_COMPLETED",
    "EXIT_COMPLETED_WITH_ERRORS",
    "EXIT_FAILED",
    "EXIT_PAUSED",
    "STATUS_EXIT",
]


DEFAULT_CHECKPOINT_INTERVAL = 1.0
"""Seconds between the time-driven checkpoints of ``routilux run`` by default."""

DEFAULT_STORE = os.path.join(".routilux", "jobs.db")
"""The job store used when neither ``--store`` nor ``ROUTILUX_STORE`` names one."""

COMMANDS_ENTRY_POINT_GROUP = "routilux.commands"
"""The entry-point group of extra subcommands (``name = "module:register"``)."""

EXIT_COMPLETED = 0
"""Exit code: the job completed (or the command succeeded)."""
EXIT_FAILED = 1
"""Exit code: the job failed."""
EXIT_BAD_INPUT = 2
"""Exit code: bad input or usage; nothing was changed in the store."""
EXIT_PAUSED = 3
"""Exit code: the job is paused (for example waiting for a person)."""
EXIT_CANCELLED = 4
"""Exit code: the job is cancelled."""
EXIT_COMPLETED_WITH_ERRORS = 5
"""Exit code: the job completed, but handlers raised errors it recorded and went on without
(an activation that failed for good; errors a retry recovered from, or that failed the job
before ``routilux retry`` ran it again, do not count)."""
EXIT_BROKEN_PIPE = 141
"""Exit code: standard output was closed early (``| head``), as after SIGPIPE (128 + 13)."""

STATUS_EXIT = {
    "completed": EXIT_COMPLETED,
    "failed": EXIT_FAILED,
    "paused": EXIT_PAUSED,
    "cancelled": EXIT_CANCELLED,
}

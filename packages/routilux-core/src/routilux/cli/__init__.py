"""
The ``routilux`` command: run flow files as jobs on a job store, and inspect, pause, resume,
retry and cancel those jobs from any process.

Exit codes: 0 completed (or success), 1 failed, 2 bad input or usage, 3 paused, 4 cancelled,
5 completed with errors, 130 a second interrupt, 141 standard output closed early.

Other packages add subcommands through the ``routilux.commands`` entry-point group
(:data:`COMMANDS_ENTRY_POINT_GROUP`): each entry point names a callable
``register(subparsers)`` that adds its parsers (``subparsers.add_parser(...)``) and sets
``func(args) -> int`` as their default; ``func`` raises :class:`UsageError` for bad input,
which the command prints as one line and exits 2 (:data:`EXIT_BAD_INPUT`), as it does for
every :class:`~routilux.exceptions.RoutiluxError`. A parser with a ``--import`` option
(``dest="imports"``, ``action="append"``) gets its modules imported before ``func`` runs.
"""

from __future__ import annotations

from routilux.cli._codes import (
    COMMANDS_ENTRY_POINT_GROUP,
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_STORE,
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_CANCELLED,
    EXIT_COMPLETED,
    EXIT_COMPLETED_WITH_ERRORS,
    EXIT_FAILED,
    EXIT_PAUSED,
)
from routilux.cli._interrupts import EXIT_INTERRUPTED
from routilux.cli._main import main
from routilux.exceptions import UsageError


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
    "EXIT_INTERRUPTED",
    "EXIT_PAUSED",
    "UsageError",
    "main",
]

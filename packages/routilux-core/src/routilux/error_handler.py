"""
ErrorHandler and ErrorStrategy: what a job does when a routine's handler raises.

The public path of :mod:`routilux.model._error_handler`.
"""

from __future__ import annotations

from routilux.model._error_handler import (
    ErrorHandler,
    ErrorStrategy,
)


__all__ = [
    "ErrorHandler",
    "ErrorStrategy",
]

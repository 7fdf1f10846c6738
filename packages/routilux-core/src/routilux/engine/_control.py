"""
The interface through which a job's remote pause and cancel requests reach the scheduler.
"""

from __future__ import annotations


__all__ = ["JobControl"]


class JobControl:
    """
    Where a job's remote pause and cancel requests come from (a store, a queue...).

    The scheduler calls :meth:`poll` before each activation starts; it must not block.
    """

    def poll(self) -> str | None:
        """
        Return ``"pause"``, ``"cancel"`` or ``None`` (no request).
        """
        return None

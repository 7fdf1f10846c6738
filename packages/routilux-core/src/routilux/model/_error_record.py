"""
ErrorRecord: one handler error a job recorded, as its ``errors`` list holds it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


__all__ = ["ErrorRecord"]


@attrs.frozen
class ErrorRecord:
    """
    One handler error a job recorded (see :attr:`JobState.errors`).

    .. versionadded:: 0.10
    """

    #: The flow routine id of the routine whose handler raised.
    routine_id: str
    #: The slot whose activation raised.
    slot: str
    #: The exception's type name.
    error_type: str
    #: The exception's message.
    message: str
    #: Which run of the activation raised (1 for the first, 2 for the first retry...).
    attempt: int
    #: When it was recorded (naive local time).
    time: datetime
    #: What the error strategy did: ``"stop"`` (the job failed), ``"continue"`` (the job
    #: went on without that activation), ``"skip"``, or ``"retry"`` (it was run again).
    strategy: str
    #: The formatted traceback.
    traceback: str = ""

    def serialize(self) -> dict[str, Any]:
        """
        Return the record as plain JSON-able data (as a job document holds it).
        """
        from routilux.codec._job_states import dump_error_record

        return dump_error_record(self)

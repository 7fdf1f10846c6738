"""
Output handlers: where ``Routine.send_output`` goes, besides the job's output log.

The public path of :mod:`routilux.model._output`.
"""

from __future__ import annotations

from routilux.model._output import (
    CallbackOutputHandler,
    NullOutputHandler,
    OutputHandler,
    QueueOutputHandler,
    output_record,
)


__all__ = [
    "CallbackOutputHandler",
    "NullOutputHandler",
    "OutputHandler",
    "QueueOutputHandler",
    "output_record",
]

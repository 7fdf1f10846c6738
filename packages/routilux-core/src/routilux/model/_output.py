"""
Output handlers: where ``Routine.send_output`` goes, besides the job's output log.
"""

from __future__ import annotations

import abc
import queue as queue_module
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol


__all__ = [
    "CallbackOutputHandler",
    "NullOutputHandler",
    "OutputHandler",
    "QueueOutputHandler",
    "output_record",
]


def output_record(
    job_id: str,
    routine_id: str,
    output_type: str,
    data: dict[str, Any],
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """
    Return one output as the dict handlers pass on: ``job_id``, ``routine_id``,
    ``output_type``, ``data`` and ``timestamp`` (ISO 8601; now when not given).
    """
    return {
        "job_id": job_id,
        "routine_id": routine_id,
        "output_type": output_type,
        "data": data,
        "timestamp": (timestamp or datetime.now()).isoformat(),
    }


class _Putter(Protocol):
    def put(self, item: Any) -> None: ...


class OutputHandler(abc.ABC):
    """
    Receives the outputs of a job. It may be called from several threads at once.
    """

    @abc.abstractmethod
    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Take one output (called with keyword arguments).
        """


class QueueOutputHandler(OutputHandler):
    """
    Puts each output as a dict on a queue (a new ``queue.Queue`` when none is given).
    """

    __slots__ = ("queue",)

    def __init__(self, queue: _Putter | None = None) -> None:
        #: The queue outputs are put on.
        self.queue: Any = queue if queue is not None else queue_module.Queue()

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Put ``{"job_id", "routine_id", "output_type", "data", "timestamp"}`` on the queue.
        """
        self.queue.put(output_record(job_id, routine_id, output_type, data, timestamp))


class CallbackOutputHandler(OutputHandler):
    """
    Calls ``callback(job_id, routine_id, output_type, data, timestamp)`` for each output.
    """

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[str, str, str, dict[str, Any], datetime], Any]) -> None:
        #: The function called for each output.
        self.callback = callback

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Call the callback positionally, with a ``datetime`` timestamp.
        """
        self.callback(job_id, routine_id, output_type, data, timestamp or datetime.now())


class NullOutputHandler(OutputHandler):
    """
    Discards every output.
    """

    __slots__ = ()

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Do nothing.
        """

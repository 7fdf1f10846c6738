"""
Output handlers: JSON lines on disk, and structlog events.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import structlog

from routilux import OutputHandler
from routilux.output_handler import output_record

from ._encode import dumps_line, plain
from ._writer import LineFile


__all__ = ["JsonLinesOutputHandler", "StructlogOutputHandler"]


class JsonLinesOutputHandler(OutputHandler):
    """
    Appends one JSON object per ``send_output`` to a file: ``job_id``, ``routine_id``,
    ``output_type``, ``data`` and ``timestamp``.

    Thread-safe: any number of jobs and workers may share one handler. Each line is written
    with a single ``os.write`` on a file opened for appending, so it is flushed when
    ``handle`` returns and lines never interleave or get lost. Values that are not JSON
    (datetimes, sets, objects...) are written as ISO strings, lists or their ``repr``.

    Args:
        path: The JSON-lines file (created with its parent folders; appended to).
        fsync: Also force each line to disk (slower; survives a power cut).

    Example:
        >>> handler = JsonLinesOutputHandler("out/results.jsonl")  # doctest: +SKIP
        >>> flow.execute("source", output_handler=handler)  # doctest: +SKIP
    """

    __slots__ = ("_file",)

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        self._file = LineFile(path, fsync)

    def __repr__(self) -> str:
        return f"JsonLinesOutputHandler({str(self.path)!r}, fsync={self.fsync})"

    @property
    def path(self) -> os.PathLike[str]:
        """
        The file outputs are appended to.
        """
        return self._file.path

    @property
    def fsync(self) -> bool:
        """
        Whether each line is forced to disk.
        """
        return self._file.fsync

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Append one line for this output.
        """
        record = output_record(job_id, routine_id, output_type, data, timestamp)
        self._file.write(dumps_line(record))

    def close(self) -> None:
        """
        Close the file (a later output opens it again).
        """
        self._file.close()

    def __enter__(self) -> JsonLinesOutputHandler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StructlogOutputHandler(OutputHandler):
    """
    Logs each ``send_output`` as a structlog event with ``job_id``, ``routine_id``,
    ``output_type``, ``data`` and ``output_time`` keys.

    The events go through the application's structlog configuration (routilux never
    configures structlog).

    Args:
        logger: The logger to use; ``structlog.get_logger("routilux_handlers.output")`` by default.
        event: The event name.
        level: The log method: ``"info"``, ``"debug"``, ``"warning"``...
    """

    __slots__ = ("event", "level", "logger")

    def __init__(
        self, logger: Any = None, *, event: str = "routilux_output", level: str = "info"
    ) -> None:
        #: The logger events go to.
        self.logger: Any = (
            logger if logger is not None else structlog.get_logger("routilux_handlers.output")
        )
        #: The event name.
        self.event = event
        #: The log method name.
        self.level = level

    def __repr__(self) -> str:
        return f"StructlogOutputHandler(event={self.event!r}, level={self.level!r})"

    def handle(
        self,
        job_id: str,
        routine_id: str,
        output_type: str,
        data: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """
        Log one event for this output (``data`` is copied as plain data).
        """
        getattr(self.logger, self.level)(
            self.event,
            job_id=job_id,
            routine_id=routine_id,
            output_type=output_type,
            data=plain(data),
            output_time=(timestamp or datetime.now()).isoformat(),
        )

"""
An append-only file of lines shared by threads: one ``os.write`` per line, under a lock.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any


__all__ = ["LineFile"]


class LineFile:
    """
    Appends whole lines to a file, thread-safe, each line written and flushed at once.

    The file is opened lazily with ``O_APPEND`` and each line goes out in a single
    ``os.write`` (no user-space buffer), so lines from several threads never interleave,
    and nothing is lost if the process dies after :meth:`write` returned. With ``fsync``
    every line is also forced to disk.

    Args:
        path: The file; its parent folders are created.
        fsync: Call ``os.fsync`` after each line.
    """

    __slots__ = ("_fd", "_lock", "fsync", "path")

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False) -> None:
        #: The file lines are appended to.
        self.path = Path(path)
        #: Whether each line is forced to disk.
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, fsync={self.fsync})"

    def write(self, line: bytes) -> None:
        """
        Append ``line`` (which ends with a newline).
        """
        with self._lock:
            fd = self._fd
            if fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                fd = self._fd = os.open(self.path, flags, 0o666)
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(fd)

    def close(self) -> None:
        """
        Close the file (the next :meth:`write` opens it again).
        """
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "fsync": self.fsync}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.fsync = state["fsync"]
        self._lock = threading.Lock()
        self._fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

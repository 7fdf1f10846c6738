"""
The time now as the naive local ISO 8601 string the library stamps entries with.
"""

from __future__ import annotations

import time
from datetime import datetime


__all__ = ["iso_now", "iso_of"]


class _Second:
    # The last whole second formatted: (epoch second, its ISO text). Replaced whole, so a
    # reader on any thread sees a matching pair.
    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[int, str] = (-1, "")


_last = _Second()


def iso_now() -> str:
    """
    Return the time now as ``datetime.now().isoformat()`` does (naive local time,
    microseconds when not zero), formatting each second's date and time once.
    """
    whole, micro = divmod(time.time_ns() // 1000, 1_000_000)
    second, text = _last.pair
    if second != whole:
        text = datetime.fromtimestamp(whole).isoformat()
        _last.pair = (whole, text)
    return text + "." + str(micro).zfill(6) if micro else text


def iso_of(ts: float) -> str:
    """
    Return the epoch time ``ts`` as a naive local ISO 8601 string.
    """
    return datetime.fromtimestamp(ts).isoformat()

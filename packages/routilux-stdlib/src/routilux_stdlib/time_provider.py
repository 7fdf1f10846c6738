"""
TimeProvider: the current time in several formats, optionally timezone-aware.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from routilux import Routine
from routilux.exceptions import ConfigurationError


__all__ = ["TimeProvider"]

_WEEKDAYS_ZH = "一二三四五六日"
# The original's Chinese format uses full-width commas on purpose.
_ZH_DATE = "%Y年%m月%d日\uff0c星期"
_ZH_TIME = "\uff0c%H:%M:%S"


def _clock() -> float:
    # Seconds since the epoch; tests replace this module attribute to freeze time.
    return time.time()


def _zone(name: Any) -> tzinfo | None:
    if name is None or name == "":
        return None
    if isinstance(name, tzinfo):
        return name
    if not isinstance(name, str):
        msg = f"timezone must be a zone name such as 'UTC' or 'Europe/Paris', got {name!r}"
        raise ConfigurationError(msg, name="timezone", value=name)
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    if name == "local":
        return datetime.now().astimezone().tzinfo
    if name[:1] in "+-" and ":" in name:
        hours, _, minutes = name[1:].partition(":")
        sign = -1 if name[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    msg = f"unknown timezone {name!r} (use 'UTC', 'local', '+HH:MM' or an IANA zone name)"
    raise ConfigurationError(msg, name="timezone", value=name)


class TimeProvider(Routine):
    """
    Emit the current time when asked.

    Slot ``request`` (attribute ``trigger_slot``) takes an optional ``format``. Event
    ``output`` carries ``time_string`` (in the requested format), ``timestamp`` (a float),
    ``datetime`` (ISO 8601) and ``formatted`` (``custom_format`` applied).

    Config:
        format (str): ``"iso"`` (default), ``"formatted"``, ``"timestamp"`` or ``"custom"``;
            anything else gives ISO.
        custom_format (str): strftime pattern of ``custom`` and ``formatted``
            (``"%Y-%m-%d %H:%M:%S"``).
        include_weekday (bool): ``formatted`` names the weekday (True).
        locale (str): ``"zh_CN"`` (default) writes ``formatted`` in Chinese; anything else
            in English.
        timezone (str | None): ``None`` (default) gives naive local time as before;
            ``"UTC"``, ``"local"``, ``"+05:30"`` or an IANA name such as
            ``"Europe/Paris"`` give timezone-aware times (the ISO strings carry the offset).

    .. versionadded:: 0.10
       The ``timezone`` key.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(
            format="iso",
            custom_format="%Y-%m-%d %H:%M:%S",
            include_weekday=True,
            locale="zh_CN",
            timezone=None,
        )
        #: The ``request`` slot.
        self.trigger_slot = self.define_slot("request", self._handle_request)
        #: The ``output`` event.
        self.output_event = self.define_event(
            "output", ["time_string", "timestamp", "datetime", "formatted"]
        )

    def now(self) -> tuple[float, datetime]:
        """
        Return ``(timestamp, datetime)`` for now, in the configured timezone.

        Raises:
            ConfigurationError: ``timezone`` names no known zone.
        """
        stamp = _clock()
        zone = _zone(self.get_config("timezone"))
        if zone is None:
            return stamp, datetime.fromtimestamp(stamp)
        return stamp, datetime.fromtimestamp(stamp, tz=zone)

    def format_time(self, now: datetime, stamp: float, fmt: str) -> str:
        """
        Return ``now`` in the format ``fmt`` under this routine's config.
        """
        custom = str(self.get_config("custom_format", "%Y-%m-%d %H:%M:%S"))
        if fmt == "timestamp":
            return str(stamp)
        if fmt == "custom":
            return now.strftime(custom)
        if fmt == "formatted":
            if not self.get_config("include_weekday", True):
                return now.strftime("%Y-%m-%d %H:%M:%S")
            if self.get_config("locale", "zh_CN") == "zh_CN":
                day = _WEEKDAYS_ZH[now.weekday()]
                return now.strftime(_ZH_DATE) + day + now.strftime(_ZH_TIME)
            return now.strftime("%A, %B %d, %Y %H:%M:%S")
        return now.isoformat()

    def _handle_request(self, data: Any = None, **kwargs: Any) -> None:
        if isinstance(data, dict) and data.get("format"):
            fmt = data["format"]
        elif kwargs.get("format"):
            fmt = kwargs["format"]
        else:
            fmt = self.get_config("format", "iso")
        stamp, now = self.now()
        self.emit(
            "output",
            time_string=self.format_time(now, stamp, str(fmt)),
            timestamp=stamp,
            datetime=now.isoformat(),
            formatted=now.strftime(str(self.get_config("custom_format", "%Y-%m-%d %H:%M:%S"))),
        )

"""FIX UTCTimestamp formatting from integer nanoseconds, cheap enough for every ExecutionReport."""

from __future__ import annotations

import time


class TimestampFormatter:
    """Formats ``ns`` since the epoch as ``YYYYMMDD-HH:MM:SS.ffffff``; the seconds prefix is cached."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, ns: int) -> str:
        second, rest = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{rest // 1000:06d}"


format_utc = TimestampFormatter()

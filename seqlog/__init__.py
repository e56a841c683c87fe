"""The venue's sequenced log, as its readers see it: one small interface, and the local journal file behind it.

The post-trade store follows the gateway's command journal, in all its segments (one per trading day:
:mod:`seqlog.segments`), through :class:`LogReader` only, so another transport (a replicated stream such as NATS
JetStream) can take the local files' place without touching the store: it needs positions that grow with the log, a
way to read the records after one, and a way to wait for more.
"""

from __future__ import annotations

from typing import Protocol

from seqlog.filelog import FileLogReader
from seqlog.records import HEADER, MAX_RECORD, ScanResult, read_records
from seqlog.segments import first_segment, log_size, read_log, segment_path, segments

Record = tuple[int, int, bytes]
"""``(position, next_position, payload)``: a record and where the one after it starts."""


class LogReader(Protocol):
    """Position in, records out, wait for more."""

    def read(self, position: int, max_records: int) -> list[Record]:
        """Up to ``max_records`` complete records from ``position`` (which must be a record boundary: 0 or a
        ``next_position`` this reader returned), in log order; ``[]`` if none is complete yet."""
        ...

    def wait(self, position: int, timeout: float) -> bool:
        """Block until the log may hold something after ``position``, or ``timeout`` seconds pass (then False)."""
        ...

    def close(self) -> None: ...


__all__ = [
    "HEADER",
    "MAX_RECORD",
    "FileLogReader",
    "LogReader",
    "Record",
    "ScanResult",
    "first_segment",
    "log_size",
    "read_log",
    "read_records",
    "segment_path",
    "segments",
]

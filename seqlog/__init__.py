"""The venue's sequenced log: one writer and one reader interface, with two logs behind them.

* :mod:`seqlog.filelog`: the local journal (the one-process venue's), in segments (one per trading day:
  :mod:`seqlog.segments`): :class:`FileLogWriter` with its durability policies, :class:`FileLogReader`; positions
  are byte offsets in the whole log.
* :mod:`seqlog.jetstream`: a NATS JetStream stream replicated over a cluster (the multi-process venue's): each
  commit is one message holding that turn's records, stored on a quorum before it is acknowledged; positions are
  ``stream sequence << 16 | index``.

Both hold records in the format of :mod:`seqlog.records`. Writers append records and commit them (the group
commit); readers (the post-trade store, the engine, the market-data publishers) need positions that grow with the
log, a way to read the records after one, and a way to wait for more.
"""

from __future__ import annotations

from typing import Any, Protocol

from seqlog.filelog import Durability, FileLogReader, FileLogWriter
from seqlog.records import HEADER, MAX_RECORD, ScanResult, read_records
from seqlog.segments import first_segment, log_size, read_log, segment_path, segments

Record = tuple[int, int, bytes]
"""``(position, next_position, payload)``: a record and where the one after it starts."""


class LogWriter(Protocol):
    """Records in, made durable together by :meth:`commit`."""

    @property
    def unsynced(self) -> int:
        """Records appended since the last commit."""
        ...

    def append(self, payload: bytes) -> None: ...

    def commit(self) -> Any:
        """Make (or start making) the records appended since the last commit durable, as one group."""
        ...

    def close(self) -> None: ...


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
    "HEADER", "MAX_RECORD", "Durability", "FileLogReader", "FileLogWriter", "LogReader", "LogWriter", "Record",
    "ScanResult", "first_segment", "log_size", "read_log", "read_records", "segment_path", "segments",
]  # fmt: skip

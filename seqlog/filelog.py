"""The local journal file behind the sequenced-log interface: :class:`FileLogWriter` and :class:`FileLogReader`.

The writer appends records (:mod:`seqlog.records`) with one of four durability policies:

``off``     no log at all (the caller keeps no writer; the value exists for configuration).
``write``   each record is handed to the OS as it is appended: survives a crash of the process, not of the machine.
``group``   group commit: records are written as they come and made durable together by :meth:`FileLogWriter.commit`
            (one fsync); the caller holds back whatever depends on them until then. Survives a power loss.
``fsync``   fsync after every record. Survives a power loss; one fsync per record.

The reader follows the same file while the writer appends to it.

The writer (the gateway) appends to the file while this reads it, so the end of the file is a moving target: a
record that is not complete yet (``torn``) is simply not returned, and the next :meth:`FileLogReader.read` finds
it whole. A record that is complete but fails its checksum is not returned either; it is reported once through
``on_problem`` (the gateway cuts such a tail when it restarts, and then appends good records in its place).
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import BinaryIO

from seqlog.records import HEADER, MAX_RECORD, parse

CHUNK = 1 << 20  # bytes read per call at most (unless a single record is longer)
EXPECTED_RECORD = 256  # bytes per record to read ahead for (a journal record is ~90): a small read for a small ask
# Seconds between size checks while waiting: from POLL_MIN after the last record found, doubling to POLL_MAX while
# nothing comes. Under load the follower's share of the lag stays ~1 ms; idle, it costs ~0.1% of a core (a fixed
# 5 ms poll cost ~2%).
POLL_MIN = 0.002
POLL_MAX = 0.05


class Durability(str, Enum):
    OFF = "off"
    WRITE = "write"
    GROUP = "group"
    FSYNC = "fsync"


_pack_header, _crc32 = HEADER.pack, zlib.crc32


class FileLogWriter:
    """Appends records to a log file; positions are byte offsets (see the module docstring for the policies)."""

    def __init__(self, path: Path, policy: Durability, on_fsync: Callable[[float], None] | None = None) -> None:
        self.path = path
        self.policy = policy
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = path.open("ab")
        self.unsynced = 0
        self.fsyncs = 0
        self.on_fsync = on_fsync
        """Called with the seconds each fsync took (metrics), whichever policy or method did it."""
        self._write = self._file.write
        # Decided once: comparing Enum members on every append costs as much as writing the record.
        self._flush_each = policy in (Durability.WRITE, Durability.FSYNC)
        self._fsync_each = policy is Durability.FSYNC

    @property
    def offset(self) -> int:
        """Bytes in the log, including records not yet synced: the position of the next record."""
        return self._file.tell()

    def append(self, payload: bytes) -> None:
        self._write(_pack_header(len(payload), _crc32(payload)))
        self._write(payload)
        if not self._flush_each:
            self.unsynced += 1
            return
        self._file.flush()
        if self._fsync_each:
            self._fsync()

    def commit(self) -> bool:
        """Make appended records durable (group commit); True if an fsync was done."""
        if not self.unsynced:
            return False
        self._file.flush()
        self._fsync()
        self.unsynced = 0
        return True

    def close(self) -> None:
        self._file.flush()
        if self.policy is not Durability.WRITE:
            self._fsync()
        self._file.close()

    def _fsync(self) -> None:
        t0 = time.perf_counter()
        os.fsync(self._file.fileno())
        self.fsyncs += 1
        if self.on_fsync is not None:
            self.on_fsync(time.perf_counter() - t0)


class FileLogReader:
    """Reads records of a journal file from any position; positions are byte offsets."""

    def __init__(self, path: Path, on_problem: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._fd: int | None = None
        self._on_problem = on_problem
        self._reported: str | None = None
        self._poll = POLL_MIN

    def _open(self) -> int | None:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:  # the gateway has not written its first record yet
                return None
        return self._fd

    def size(self) -> int:
        """Bytes in the file now (0 if it does not exist yet)."""
        fd = self._open()
        return 0 if fd is None else os.fstat(fd).st_size

    def read(self, position: int, max_records: int) -> list[tuple[int, int, bytes]]:
        fd = self._open()
        if fd is None or max_records <= 0:
            return []
        out: list[tuple[int, int, bytes]] = []
        want = min(CHUNK, max_records * EXPECTED_RECORD)
        while True:
            data = os.pread(fd, want, position)
            problem = parse(data, position, out, max_records)
            if problem is None or len(out) >= max_records:
                break
            if problem == "torn":
                if out or len(data) < want or want >= CHUNK + MAX_RECORD:
                    break  # the end of what is written, or records to go on with (or a record larger than any)
                want = min(want * 2, CHUNK + MAX_RECORD)  # one record longer than what was read: read wider
                continue
            if problem != self._reported:
                self._reported = problem
                if self._on_problem is not None:
                    self._on_problem(problem)
            break
        return out

    def wait(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.size() > position:
                self._poll = POLL_MIN
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self._poll, left))
            self._poll = min(self._poll * 2, POLL_MAX)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""The record format of a sequenced log file (the gateway's command journal).

A file is a sequence of records ``[u32 little-endian payload length][u32 CRC-32 of payload][payload]``. A record's
position is its byte offset; the next record starts right after its payload. A short or corrupt record (a length
that runs past the end of the file or above :data:`MAX_RECORD`, a CRC mismatch) ends the usable part of the file.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("<II")
MAX_RECORD = 1 << 20  # no command is anywhere near this; a larger length means corruption


@dataclass
class ScanResult:
    """What reading a journal found: good records up to ``good_end``; ``error`` says why reading stopped early."""

    records: int = 0
    good_end: int = 0
    size: int = 0
    error: str | None = None


def parse(data: bytes | memoryview, base: int, out: list[tuple[int, int, bytes]], limit: int) -> str | None:
    """Append ``(position, next_position, payload)`` of the intact records in ``data`` (which starts at file offset
    ``base``) to ``out``, at most ``limit`` of them. Returns None if parsing stopped at the end of ``data`` (or at the
    limit), else why the record at the stop is unusable: ``"torn"`` (it runs past the end of ``data``) or a
    description of the corruption."""
    pos, end = 0, len(data)
    unpack, crc32 = HEADER.unpack_from, zlib.crc32
    while pos < end and len(out) < limit:
        if end - pos < HEADER.size:
            return "torn"
        length, crc = unpack(data, pos)
        body = pos + HEADER.size
        if length > MAX_RECORD:
            return f"corrupt record at offset {base + pos} (length {length})"
        if body + length > end:
            return "torn"
        payload = bytes(data[body : body + length])
        if crc32(payload) != crc:
            return f"checksum mismatch in record at offset {base + pos}"
        out.append((base + pos, base + body + length, payload))
        pos = body + length
    return None


def read_records(path: Path, start: int = 0, result: ScanResult | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` of each intact record from ``start``; fills ``result`` as it goes."""
    result = result if result is not None else ScanResult()
    with path.open("rb") as f:
        data = f.read()
    result.size = len(data)
    pos = start
    result.good_end = start
    end = len(data)
    unpack = HEADER.unpack_from
    while pos < end:
        if end - pos < HEADER.size:
            result.error = f"torn record header at offset {pos} ({end - pos} bytes)"
            return
        length, crc = unpack(data, pos)
        body = pos + HEADER.size
        if length > MAX_RECORD or body + length > end:
            result.error = f"torn or corrupt record at offset {pos} (length {length}, {end - body} bytes left)"
            return
        payload = data[body : body + length]
        if zlib.crc32(payload) != crc:
            result.error = f"checksum mismatch in record at offset {pos}"
            return
        yield pos, payload
        pos = body + length
        result.records += 1
        result.good_end = pos

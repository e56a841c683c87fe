"""A log in segments: one file per trading day, positions continuing across them.

The first segment keeps the log's own name (``commands.journal``); each later one is named after the position it
starts at and a label (the trading date it begins): ``commands-<position, 16 digits>-<label>.journal``. A segment
starts exactly where the one before it ends, so a position names one byte of the whole log whichever segment holds
it, and a reader that reaches the end of a segment goes on in the next one. Old segments stay as they are: the record
of their days.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from seqlog.records import ScanResult, read_records


def segment_path(first: Path, base: int, label: str) -> Path:
    """The file of the segment that starts at position ``base`` (``label``: letters, digits and ``-`` only)."""
    if not re.fullmatch(r"[\w-]*", label):
        raise ValueError(f"segment label {label!r}")
    suffix = f"-{label}" if label else ""
    return first.with_name(f"{first.stem}-{base:016d}{suffix}{first.suffix}")


def segments(first: Path) -> list[tuple[int, Path]]:
    """(start position, file) of every segment of the log whose first segment is ``first``, in log order (the first
    segment only if it exists)."""
    pattern = re.compile(rf"{re.escape(first.stem)}-(\d{{16}})(?:-[\w-]*)?{re.escape(first.suffix)}")
    found = [(0, first)] if first.exists() else []
    if first.parent.is_dir():
        for p in first.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def first_segment(path: Path) -> Path:
    """The first segment of the log that ``path`` (any of its segments) belongs to."""
    m = re.fullmatch(r"(.+)-\d{16}(?:-[\w-]*)?", path.stem)
    return path.with_name(f"{m.group(1)}{path.suffix}") if m else path


def log_size(first: Path) -> int:
    """The position after the last byte of the log (0 if it has no segment yet)."""
    found = segments(first)
    if not found:
        return 0
    base, last = found[-1]
    return base + last.stat().st_size


def read_log(first: Path, start: int = 0, result: ScanResult | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(position, payload)`` of each intact record from ``start``, segment after segment; fills ``result``
    (``size`` and ``good_end`` are positions in the whole log; a bad record ends the reading, wherever it is)."""
    result = result if result is not None else ScanResult()
    found = segments(first)
    result.size = log_size(first)
    result.good_end = start
    for i, (base, path) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else None
        if end is not None and end <= start:
            continue
        scan = ScanResult()
        for offset, payload in read_records(path, max(start - base, 0), scan):
            yield base + offset, payload
            result.records += 1
        result.good_end = base + scan.good_end
        if scan.error is not None:
            result.error = f"{path.name}: {scan.error}"
            return
        if end is not None and base + scan.good_end != end:
            result.error = f"{path.name} ends at {base + scan.good_end}, but the next segment starts at {end}"
            return

"""Keep large freed blocks out of the heap: pin glibc's mmap threshold at its default.

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (128 KiB at start) with a mapping of its own, unmapped when
freed, but each time such a block is freed it raises the threshold to that block's size (up to 32 MiB), so later
blocks of that size come from the heap, whose top cannot be returned while anything lives above it. The engine's
order and ClOrdID tables are a few MiB each and CPython rebuilds a table as entries come and go (the finished-order
window forgets one order for each it learns), so with the moving threshold a rebuilt table could take a fresh stretch
of heap: the one-hour soak's RSS rose in steps of one table (5 MB at minutes 6, 14 and 18), then stayed. Setting
the threshold switches the adjustment off; at 128 KiB every table keeps its own mapping and gives it back when
rebuilt (tests/test_malloc.py, BENCHMARKS.md "The hour, third time").
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value


def pin_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix the threshold for this process (True), or do nothing where the C library has no ``mallopt`` (False)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None)
    if mallopt is None:  # not glibc (macOS, musl has a no-op one)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))

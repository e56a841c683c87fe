"""Diagnosis of memory growth: ``FIXGW_TRACEMALLOC=<directory>`` makes the gateway trace Python allocations and
write a tracemalloc snapshot there every ``FIXGW_TRACEMALLOC_EVERY`` seconds (default 60).

Compare two snapshots with ``python -m gateway.memtrace FIRST LAST`` (the largest growths by line). Tracing slows
every allocation; it is for finding a leak, never for production. It sees only Python's allocations: RSS that grows
while the traced total stays flat comes from C (QuickFIX, the allocator).
"""

from __future__ import annotations

import itertools
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

ENV, EVERY_ENV = "FIXGW_TRACEMALLOC", "FIXGW_TRACEMALLOC_EVERY"


def install(gw: Any) -> None:
    """Start tracing and schedule snapshots on the gateway's timers, if the environment asks for it."""
    target = os.environ.get(ENV)
    if not target:
        return
    directory = Path(target)
    directory.mkdir(parents=True, exist_ok=True)
    tracemalloc.start()
    numbers = itertools.count()

    def dump(_: float) -> None:
        path = directory / f"gateway-{next(numbers):04d}.tracemalloc"
        tracemalloc.take_snapshot().dump(str(path))
        traced, _peak = tracemalloc.get_traced_memory()
        gw.log.info("tracemalloc_snapshot", path=str(path), traced_mb=round(traced / 1e6, 1))

    gw.scheduler.every(float(os.environ.get(EVERY_ENV, "60")), dump)
    gw.log.warning("tracemalloc_on", directory=str(directory))


def growth(first: Path, last: Path, top: int = 15) -> list[str]:
    """The ``top`` lines whose allocations grew most from ``first`` to ``last``, and the traced totals."""
    a = tracemalloc.Snapshot.load(str(first))
    b = tracemalloc.Snapshot.load(str(last))
    total_a = sum(s.size for s in a.statistics("filename"))
    total_b = sum(s.size for s in b.statistics("filename"))
    lines = [f"traced: {total_a / 1e6:.1f} MB -> {total_b / 1e6:.1f} MB"]
    lines += [str(stat) for stat in b.compare_to(a, "lineno")[:top]]
    return lines


if __name__ == "__main__":  # pragma: no cover - a diagnosis helper
    if len(sys.argv) != 3:
        sys.exit("usage: python -m gateway.memtrace FIRST.tracemalloc LAST.tracemalloc")
    print("\n".join(growth(Path(sys.argv[1]), Path(sys.argv[2]))))

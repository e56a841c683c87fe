"""The share of this virtual machine's CPU time the host took for other guests ("steal"), second by second.

On a shared virtual machine the hypervisor may run other tenants on our physical cores: for those milliseconds no
process here runs, whatever its priority, and every answer in flight waits. ``/proc/stat``'s ``steal`` column counts
that time. A soak measured on such a machine sees the venue's latency and the neighbours' load mixed: in a 6-minute
run at 1,000 orders/s, seconds with over 25% steal had 40 times as many answers over 10 ms as seconds with at most
2% (BENCHMARKS.md, "The soak's latency bursts"). :class:`StealSampler` records the steal of every wall-clock second,
so that a verdict about the venue can leave out the seconds the host took.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def cpu_jiffies() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs since boot; (0, 0) where ``/proc/stat`` has no steal column."""
    fields = PROC_STAT.read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal (guest time is in user)
    return (values[7], sum(values)) if len(values) == 8 else (0, 0)


class StealSampler:
    """A daemon thread that reads ``/proc/stat`` just after every whole second; :attr:`steal_pct` maps a second
    (``int(time.time())`` of any instant in it) to the percentage of CPU time stolen during it."""

    def __init__(self) -> None:
        self.steal_pct: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steal-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        steal, total = cpu_jiffies()
        while not self._stop.wait(1.005 - time.time() % 1.0):  # just after the next whole second
            second = int(time.time()) - 1  # the second that just ended
            now_steal, now_total = cpu_jiffies()
            if now_total > total:
                self.steal_pct[second] = round(100 * (now_steal - steal) / (now_total - total), 1)
            steal, total = now_steal, now_total

    def quiet(self, second: int, limit: float) -> bool:
        """True if the host took at most ``limit`` percent in ``second`` and in the one before (a stall's backlog is
        answered in the next second); a second not sampled is not quiet."""
        before, this = self.steal_pct.get(second - 1), self.steal_pct.get(second)
        return before is not None and this is not None and before <= limit and this <= limit

    def mean(self, start: float, end: float) -> float | None:
        """Mean steal percentage over the whole seconds in [start, end)."""
        values = [v for s, v in self.steal_pct.items() if start <= s < end]
        return round(sum(values) / len(values), 1) if values else None

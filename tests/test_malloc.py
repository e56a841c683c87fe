"""The venue's memory stays flat while the engine's tables churn (gateway/malloc.py).

A fresh process drives the real engine the way a day of order entry does once each session's finished-order window
is full: eight sessions enter orders and cancel them, so the engine learns and forgets orders at the same rate and
its order and ClOrdID tables (a few MiB each) are rebuilt again and again. With glibc's moving mmap threshold a
rebuilt table can land in a fresh stretch of heap and the process keeps the old one: RSS rose by 5.2 MB at the tenth
round here (and in 5 MB steps in the one-hour soak). With the threshold pinned, as ``fixgw serve`` does, RSS does
not move after the windows fill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.gateway_process import ROOT

ROUNDS, PER_ROUND, SESSIONS = 14, 5000, 8
WARM_ROUNDS = 3  # the windows (10,000 finished orders each) are full after 2.5 rounds


def churn(pin: bool) -> list[float]:
    """RSS (MB) after each round of a fresh process's order entry."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.test_malloc", "pin" if pin else "moving"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    return list(json.loads(out.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
@pytest.mark.timeout(300)
def test_rss_flat_while_the_engine_forgets_orders() -> None:
    rss = churn(pin=True)
    after_warm_up = rss[WARM_ROUNDS:]
    assert max(after_warm_up) - after_warm_up[0] < 1.0, f"RSS by round (MB): {rss}"


def _child(pin: bool) -> None:
    from bench.engine_bench import BUY, DAY, INSTRUMENT, LIMIT, SELL
    from engine import CancelOrder, MatchingEngine, NewOrder
    from gateway.malloc import pin_mmap_threshold

    if pin and not pin_mmap_threshold():
        raise SystemExit("mallopt refused the threshold")
    page = os.sysconf("SC_PAGE_SIZE")
    engine = MatchingEngine([INSTRUMENT])
    owners = [f"S{i}" for i in range(SESSIONS)]
    rss: list[float] = []
    n = 0
    for _ in range(ROUNDS):
        for _ in range(PER_ROUND):
            for owner in owners:
                n += 1
                side, price = (BUY, 9000 - n % 50) if n % 2 else (SELL, 11000 + n % 50)
                engine.process(NewOrder(owner, f"n{n}", owner, "BENCH", side, LIMIT, DAY, price, 5, False, n))
                engine.process(CancelOrder(owner, f"x{n}", f"n{n}", None, n))
        with open("/proc/self/statm") as statm:
            rss.append(round(int(statm.read().split()[1]) * page / 1e6, 1))
    print(json.dumps(rss))


if __name__ == "__main__":
    _child(sys.argv[1] == "pin")

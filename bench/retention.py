"""What the gateway keeps per unit of traffic: the two sources of the first soak's RSS growth, measured alone.

    python -m bench.retention [--messages 1000000] [--orders 200000]

* **QuickFIX's FileStore** writes every message a session sends to its body file. The stock store also kept each
  message's offset in an in-memory map (``m_offsets``, ~63 bytes per message) until a sequence reset; the fixgw
  patch (``quickfix 1.16.0+fixgw.5``, first built as ``fixgw.3``; third_party/quickfix/README.md) keeps none and
  finds a resend's range in the ``.header`` file. Here: ``--messages`` messages of 250 bytes stored in a scratch
  FileStore; growth of the process's RSS per message over the second half (the first half warms the allocator and
  stdio buffers up); then the time to fetch 100 messages from the start and from the end of the store, as a resend
  does.
* **The matching engine** keeps its working orders and each owner's last ``finished_orders`` finished ones
  (``MatchingEngine.orders``, ``clordids``, ``finished``); it used to keep every order. Here: 2 x ``--orders`` Day
  limit orders from 8 owners, entered and cancelled again (nothing rests); growth of the Python heap (tracemalloc)
  per order over the second half, and what the engine still holds at the end.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import quickfix as fix

from engine import CancelOrder, Instrument, MatchingEngine, NewOrder, OrdType, Side, TimeInForce

INSTRUMENT = Instrument("AAPL", Decimal("0.01"), Decimal(1), Decimal(1), Decimal(100_000), Decimal("0.01"),
                        Decimal(100_000))  # fmt: skip


def fix_version() -> str:
    return version("quickfix")


def rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def filestore_bytes_per_message(messages: int, size: int = 250) -> tuple[float, float, float]:
    """RSS growth per message over the second half of ``messages`` stored; seconds to get 100 messages from the
    store's start and from its end (checked: the right ones)."""
    with tempfile.TemporaryDirectory(prefix="filestore-") as tmp:
        cfg = Path(tmp) / "qf.cfg"
        cfg.write_text(
            f"[DEFAULT]\nConnectionType=acceptor\nFileStorePath={tmp}/store\n"
            "[SESSION]\nBeginString=FIX.4.4\nSenderCompID=EXCH\nTargetCompID=X\nSocketAcceptPort=1\n"
        )
        store = fix.FileStoreFactory(fix.SessionSettings(str(cfg))).create(
            fix.UtcTimeStamp(), fix.SessionID("FIX.4.4", "EXCH", "X")
        )
        half = messages // 2
        before = 0.0
        for seq in range(1, messages + 1):
            if seq == half + 1:
                before = rss_mb()
            store.set(seq, f"{seq:012d}" + "x" * (size - 12))
        grown = (rss_mb() - before) * 1024 * 1024 / (messages - half)
        times = []
        for first in (1, messages - 99):
            t0 = time.perf_counter()
            found = fix.VectorString()
            store.get(first, first + 99, found)
            got = list(found)
            times.append(time.perf_counter() - t0)
            assert [m[:12] for m in got] == [f"{n:012d}" for n in range(first, first + 100)], "wrong messages"
        return grown, times[0], times[1]


def engine_bytes_per_order(orders: int) -> tuple[float, int, int]:
    """Heap growth per order entered and cancelled, over the second ``orders`` of 2 x ``orders``; and how many
    orders and ClOrdIDs the engine still holds."""
    engine = MatchingEngine([INSTRUMENT])
    gc.collect()
    tracemalloc.start()
    before = 0
    for i in range(2 * orders):
        if i == orders:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
        owner = f"S{i % 8}"
        side = Side.BUY if i % 2 else Side.SELL
        price = 9_900 + i % 100 if side is Side.BUY else 10_001 + i % 100
        engine.process(NewOrder(owner, f"{owner}-{i}", owner, "AAPL", side, OrdType.LIMIT, TimeInForce.DAY, price,
                                1 + i % 20, False, i))  # fmt: skip
        engine.process(CancelOrder(owner, f"{owner}-{i}-x", f"{owner}-{i}", None, i))
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    kept = len(engine.orders)
    ids = sum(len(v) for v in engine.clordids.values())
    return grown / orders, kept, ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=200_000)
    ns = p.parse_args(argv)
    per_message, start_s, end_s = filestore_bytes_per_message(ns.messages)
    print(f"FileStore (quickfix {fix_version()}): {ns.messages:,} messages stored, RSS +{per_message:.1f} bytes per "
          f"message; 100 messages fetched from the start in {start_s * 1e3:.2f} ms, from the end in "
          f"{end_s * 1e3:.2f} ms")  # fmt: skip
    per_order, kept, ids = engine_bytes_per_order(ns.orders)
    print(f"engine: {2 * ns.orders:,} orders entered and cancelled (none open), {kept:,} orders and {ids:,} "
          f"ClOrdIDs still held, heap +{per_order:.1f} bytes per order over the last {ns.orders:,}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

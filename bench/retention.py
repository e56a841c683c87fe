"""What the gateway keeps for good, per unit of traffic: the two sources of the soak's RSS growth, measured alone.

    python -m bench.retention [--messages 1000000] [--orders 200000]

* **QuickFIX's FileStore** writes every message a session sends to its body file and keeps the message's offset in
  an in-memory map (``m_offsets``) for as long as the session's sequence numbers last (until a reset); at start-up
  it reads the whole header file back into that map. Here: ``--messages`` messages of 250 bytes stored in a scratch
  FileStore; growth of the process's RSS per message.
* **The matching engine** keeps every order it has accepted, open or not (``MatchingEngine.orders``), and every
  ClOrdID each owner has used (``clordids``, for the duplicate check). Here: ``--orders`` Day limit orders entered
  and cancelled again (nothing rests at the end); growth of the Python heap (tracemalloc) per order.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import tracemalloc
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from engine import CancelOrder, Instrument, MatchingEngine, NewOrder, OrdType, Side, TimeInForce

INSTRUMENT = Instrument("AAPL", Decimal("0.01"), Decimal(1), Decimal(1), Decimal(100_000), Decimal("0.01"),
                        Decimal(100_000))  # fmt: skip


def rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def filestore_bytes_per_message(messages: int, size: int = 250) -> float:
    with tempfile.TemporaryDirectory(prefix="filestore-") as tmp:
        cfg = Path(tmp) / "qf.cfg"
        cfg.write_text(
            f"[DEFAULT]\nConnectionType=acceptor\nFileStorePath={tmp}/store\n"
            "[SESSION]\nBeginString=FIX.4.4\nSenderCompID=EXCH\nTargetCompID=X\nSocketAcceptPort=1\n"
        )
        store = fix.FileStoreFactory(fix.SessionSettings(str(cfg))).create(
            fix.UtcTimeStamp(), fix.SessionID("FIX.4.4", "EXCH", "X")
        )
        msg = "x" * size
        before = rss_mb()
        for seq in range(1, messages + 1):
            store.set(seq, msg)
        return (rss_mb() - before) * 1024 * 1024 / messages


def engine_bytes_per_order(orders: int) -> tuple[float, int, int]:
    """Heap growth per order entered and cancelled; and how many orders and ClOrdIDs the engine still holds."""
    engine = MatchingEngine([INSTRUMENT])
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(orders):
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
    per_message = filestore_bytes_per_message(ns.messages)
    print(f"FileStore: {ns.messages:,} messages stored, RSS +{per_message:.1f} bytes per message")
    per_order, kept, ids = engine_bytes_per_order(ns.orders)
    print(f"engine: {ns.orders:,} orders entered and cancelled (none open), {kept:,} orders and {ids:,} ClOrdIDs "
          f"still held, heap +{per_order:.0f} bytes per order")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

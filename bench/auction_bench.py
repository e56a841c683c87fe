"""What an auction costs the engine, for a book of many resting orders.

    python -m bench.auction_bench [--orders 100000] [--runs 3] [--seed 7] [--books thin,deep,deep+ledger]

A pre-open book of ``--orders`` limit orders (half bids, half offers, 200 accounts, prices in ticks around 100.00,
each level holding several orders) is built order by order, then opened (SetPhase to continuous: the opening
auction, then continuous trading). Three books:

* ``thin``: bids 90.00..100.01 and offers 99.99..110.00: a narrow crossing, few trades. The cost of finding the
  price and uncrossing in a deep book.
* ``deep``: bids and offers both 95.00..105.00: about half the book crosses; tens of thousands of trades.
* ``deep+ledger``: ``deep`` with a funded ledger (holds, settlement at the maker rate, positions).

Reported per book: the time to enter the orders in pre-open (each one recomputes and, if it changed, publishes the
indicative price), the auction itself (one command: the uncross, every fill's reports, the trades, the level updates,
the statistics), the trades it made and the events it produced. Medians of ``--runs`` fresh engines. Times are the
process's CPU time (``time.process_time``), which other load on a shared machine inflates far less than wall time;
the garbage collector is off while timing.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import time

from bench.engine_bench import INSTRUMENT, make_engine
from engine import Command, MatchingEngine, NewOrder, OrdType, Phase, PhaseCause, SetPhase, Side, TimeInForce
from engine.events import TradePrint

BOOKS = ("thin", "deep", "deep+ledger")


def pre_open_book(kind: str, n: int, seed: int) -> list[Command]:
    rng = random.Random(seed)
    if kind == "thin":
        bid_lo, bid_hi, ask_lo, ask_hi = 9_000, 10_001, 9_999, 11_000
    else:
        bid_lo, bid_hi, ask_lo, ask_hi = 9_500, 10_500, 9_500, 10_500
    out: list[Command] = [
        SetPhase("", "BENCH", Phase.CLOSED, PhaseCause.SCHEDULE, 0),
        SetPhase("", "BENCH", Phase.PRE_OPEN, PhaseCause.SCHEDULE, 1),
    ]
    for i in range(n):
        owner = f"O{rng.randrange(200)}"
        side = Side.BUY if i % 2 else Side.SELL
        price = rng.randint(bid_lo, bid_hi) if side is Side.BUY else rng.randint(ask_lo, ask_hi)
        out.append(NewOrder(owner, f"c{i}", owner, "BENCH", side, OrdType.LIMIT, TimeInForce.DAY, price,
                            rng.randint(1, 100), False, 2 + i))  # fmt: skip
    return out


def one_run(kind: str, n: int, seed: int) -> dict[str, float]:
    commands = pre_open_book(kind.split("+")[0], n, seed)
    engine: MatchingEngine = make_engine("funds-checks" if kind.endswith("ledger") else "none")
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        for cmd in commands:
            engine.process(cmd)
        entered = time.process_time() - t0
        book = engine.book("BENCH")
        indicative = book.indicative
        t0 = time.process_time()
        events = engine.process(SetPhase("", "BENCH", Phase.CONTINUOUS, PhaseCause.SCHEDULE, 10**12))
        auction = time.process_time() - t0
    finally:
        gc.enable()
    trades = sum(1 for e in events if type(e) is TradePrint)
    executed = sum(e.qty for e in events if type(e) is TradePrint)
    # The indicative volume is an upper bound: self-trade prevention may cancel some of it in the auction.
    assert executed <= (indicative[1] if indicative is not None else 0)
    return {
        "pre_open_us_per_order": entered / n * 1e6,
        "auction_ms": auction * 1e3,
        "trades": trades,
        "events": len(events),
        "auction_us_per_trade": auction / max(trades, 1) * 1e6,
        "price": indicative[0] if indicative is not None else 0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--books", default=",".join(BOOKS), help="which books, comma-separated")
    args = p.parse_args(argv)
    assert INSTRUMENT.symbol == "BENCH"
    books = args.books.split(",")
    if not set(books) <= set(BOOKS):
        p.error(f"--books: choose from {', '.join(BOOKS)}")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in books}
    for run in range(args.runs):
        for kind in books:
            r = one_run(kind, args.orders, args.seed)
            results[kind].append(r)
            print(json.dumps({"run": run + 1, "book": kind, **{k: round(v, 3) for k, v in r.items()}}), flush=True)
    print()
    print(f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"Command: python -m bench.auction_bench --orders {args.orders} --runs {args.runs} --books {args.books}")
    print()
    print("| book | pre-open entry, µs per order | auction, ms | trades | events | µs per trade |")
    print("|---|---|---|---|---|---|")
    for kind in books:
        med = {k: statistics.median(r[k] for r in results[kind]) for k in results[kind][0]}
        print(f"| {kind} | {med['pre_open_us_per_order']:.1f} | {med['auction_ms']:.1f} | {med['trades']:,.0f} | "
              f"{med['events']:,.0f} | {med['auction_us_per_trade']:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Matching-engine benchmark: a seeded stream of commands replayed through one MatchingEngine.

    python -m bench.engine_bench [--commands 1000000] [--runs 5] [--resting 1000000] [--seed 7]

Three measurements, each printed as one JSON line and summarised as a markdown table:

* throughput: the standard mix (below) replayed ``--runs`` times into a fresh engine, commands/s (median);
* latency: the same stream once more with a clock read around every command, p50/p99/p99.9 per command;
* the garbage collector is handled as in the gateway: ``gc.freeze()`` every 10,000 commands moves the long-lived
  orders out of the collector's sight, so a full collection never walks a million resting orders;
* memory: ``--resting`` non-crossing limit orders at 2,000 price levels, bytes per resting order as counted by
  tracemalloc (every Python allocation the engine keeps: orders, ids, ClOrdIDs, maps, levels).

The standard mix, generated up front so generation is not timed: 55% passive limit orders within 10 ticks of the
touch, 30% cancels of a resting order, 8% cancel/replaces (half quantity-down, half re-price), 5% marketable limit
IOC orders, 2% market orders; 200 accounts, one symbol, prices random-walking around 100.00.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import time
import tracemalloc
from decimal import Decimal

from engine import (
    CancelOrder,
    Command,
    Fund,
    Instrument,
    Ledger,
    LedgerSetup,
    Market,
    MatchingEngine,
    NewOrder,
    OrdType,
    ReplaceOrder,
    Side,
    TimeInForce,
)

INSTRUMENT = Instrument(
    "BENCH", Decimal("0.01"), Decimal(1), Decimal(1), Decimal(1_000_000), Decimal("0.01"), Decimal(1_000_000)
)
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrdType.LIMIT, OrdType.MARKET
DAY, IOC = TimeInForce.DAY, TimeInForce.IOC


def standard_mix(n: int, seed: int) -> list[Command]:
    """The seeded command stream described in the module docstring.

    A scratch engine runs alongside the generator (untimed) so that cancels and replaces name orders that are
    still resting, as a real client's would.
    """
    rng = random.Random(seed)
    owners = [f"O{i}" for i in range(200)]
    shadow = MatchingEngine([INSTRUMENT])
    live: list[tuple[str, str, Side, int]] = []  # (owner, clordid, side, price) resting the last time we looked
    mid = 10_000
    out: list[Command] = []

    def pick() -> int | None:
        for _ in range(8):
            if not live:
                return None
            j = rng.randrange(len(live))
            order = shadow.find(live[j][0], live[j][1])
            if order is not None and order.is_open:
                return j
            live[j] = live[-1]
            live.pop()
        return None

    for i in range(n):
        if i % 100 == 0:
            mid += rng.randint(-2, 2)
        r = rng.random()
        owner = owners[rng.randrange(200)]
        j = pick() if 0.55 <= r < 0.93 else None
        cmd: Command
        if r < 0.55 or (r < 0.93 and j is None):
            side = BUY if rng.random() < 0.5 else SELL
            price = mid - 1 - rng.randrange(10) if side is BUY else mid + 1 + rng.randrange(10)
            cl = f"n{i}"
            cmd = NewOrder(owner, cl, owner, "BENCH", side, LIMIT, DAY, price, rng.randint(1, 100), False, i)
            live.append((owner, cl, side, price))
        elif r < 0.85 and j is not None:
            o, cl, side, price = live[j]
            live[j] = live[-1]
            live.pop()
            cmd = CancelOrder(o, f"x{i}", cl, None, i)
        elif j is not None:
            o, cl, side, price = live[j]
            new_cl = f"r{i}"
            if rng.random() < 0.5:
                new_price, qty = price, rng.randint(1, 50)
            else:
                new_price, qty = price + rng.choice((-1, 1)), rng.randint(1, 100)
            cmd = ReplaceOrder(o, new_cl, cl, None, "BENCH", side, new_price, qty, i)
            live[j] = (o, new_cl, side, new_price)
        elif r < 0.98:
            side = BUY if rng.random() < 0.5 else SELL
            price = mid + 2 if side is BUY else mid - 2
            cmd = NewOrder(owner, f"i{i}", owner, "BENCH", side, LIMIT, IOC, price, rng.randint(1, 60), False, i)
        else:
            side = BUY if rng.random() < 0.5 else SELL
            cmd = NewOrder(owner, f"m{i}", owner, "BENCH", side, MARKET, IOC, None, rng.randint(1, 100), False, i)
        shadow.process(cmd)
        out.append(cmd)
    return out


FREEZE_EVERY = 10_000  # as the gateway does: see gateway.server.GC_FREEZE_EVERY
ACCOUNTS = tuple(f"O{i}" for i in range(200))
# The bench instrument's money: BENCH shares against USD in micro-dollars (a tick of 0.01 x a lot of 1 = 10,000
# units), a 1 bp maker rebate and a 5 bp taker fee; every account funded far beyond what the mix can spend, so that
# the ledger's work is measured, not refusals.
BENCH_MARKET = Market("BENCH", "BENCH", "USD", base_per_lot=1, quote_per_tick_lot=10_000, maker_ppm=-100, taker_ppm=500)
LEDGERS = ("none", "no-funds-checks", "funds-checks")


def make_engine(ledger: str = "none") -> MatchingEngine:
    """The bench engine: bare (``none``), or with a funded ledger, with or without funds checks."""
    if ledger == "none":
        return MatchingEngine([INSTRUMENT])
    setup = LedgerSetup(
        {"USD": 6, "BENCH": 0}, {"BENCH": BENCH_MARKET}, ACCOUNTS, funds_checks=ledger == "funds-checks"
    )
    engine = MatchingEngine([INSTRUMENT], ledger=Ledger(setup))
    # 10^16 micro-dollars (10^10 USD) each: far beyond the mix, and 200 of them stay under the ledger's 2^63 - 1
    # units per asset (10^18 each did not: from the tenth account on every deposit was refused, and the "funded"
    # ledger measured mostly refusals)
    for account in ACCOUNTS:
        for asset, amount in (("USD", 10**16), ("BENCH", 10**12)):
            events = engine.process(Fund("bench", account, asset, amount, f"{asset}-{account}"))
            if not getattr(events[0], "applied", False):
                raise RuntimeError(f"bench funding refused: {events[0]}")
    engine.commands_processed = 0
    return engine


def throughput(commands: list[Command], ledger: str = "none") -> float:
    engine = make_engine(ledger)
    process = engine.process
    gc.collect()
    t0 = time.perf_counter()
    for i, cmd in enumerate(commands):
        process(cmd)
        if not i % FREEZE_EVERY:
            gc.freeze()
    rate = len(commands) / (time.perf_counter() - t0)
    gc.unfreeze()
    return rate


def latencies(commands: list[Command], ledger: str = "none") -> dict[str, float]:
    engine = make_engine(ledger)
    process = engine.process
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    gc.collect()
    for i, cmd in enumerate(commands):
        t0 = clock()
        process(cmd)
        append(clock() - t0)
        if not i % FREEZE_EVERY:
            gc.freeze()
    gc.unfreeze()
    samples.sort()
    n = len(samples)
    return {q: samples[min(n - 1, int(n * f))] / 1000 for q, f in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))}


def memory_per_resting_order(n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    tracemalloc.start()
    engine = MatchingEngine([INSTRUMENT])
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        side = BUY if i % 2 else SELL
        price = 9_000 - rng.randrange(1000) if side is BUY else 11_000 + rng.randrange(1000)
        owner = f"O{i % 200}"
        engine.process(NewOrder(owner, f"c{i}", owner, "BENCH", side, LIMIT, DAY, price, rng.randint(1, 100), False, i))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    resting = sum(lv.count for side in (engine.books["BENCH"].bids, engine.books["BENCH"].asks) for lv in side.values())
    return {"resting_orders": resting, "bytes_per_order": held / resting}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--resting", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ledger", choices=(*LEDGERS, "compare"), default="none",
        help="the engine without a ledger (default), with one (with or without funds checks), or all three "
        "interleaved in one run (compare)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.ledger == "compare":
        return compare(args)
    t0 = time.perf_counter()
    commands = standard_mix(args.commands, args.seed)
    print(json.dumps({"generated": len(commands), "seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    rates = []
    for run in range(args.runs):
        rates.append(throughput(commands))
        print(json.dumps({"run": run + 1, "commands_per_s": round(rates[-1])}), flush=True)
    lat = latencies(commands)
    print(json.dumps({"latency_us": lat}), flush=True)
    del commands
    gc.collect()
    mem = memory_per_resting_order(args.resting, args.seed)
    print(json.dumps(mem), flush=True)
    print()
    print(f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    flags = f"--commands {args.commands} --runs {args.runs} --resting {args.resting}"
    print(f"Command: python -m bench.engine_bench {flags}")
    print()
    print("| measure | value |")
    print("|---|---|")
    spread = f"{min(rates):,.0f} to {max(rates):,.0f}"
    print(f"| commands/s, median of {args.runs} (min to max) | {statistics.median(rates):,.0f} ({spread}) |")
    print(f"| latency per command p50 / p99 / p99.9 | {lat['p50']:.1f} / {lat['p99']:.1f} / {lat['p99.9']:.1f} µs |")
    print(f"| memory per resting order ({mem['resting_orders']:,} resting) | {mem['bytes_per_order']:.0f} bytes |")
    return 0


def compare(args: argparse.Namespace) -> int:
    """The standard mix through the bare engine and through the engine with its ledger, without and with funds
    checks: ``--runs`` rounds, the three interleaved in each round so they share the machine's state."""
    commands = standard_mix(args.commands, args.seed)
    rates: dict[str, list[float]] = {name: [] for name in LEDGERS}
    for run in range(args.runs):
        for name in LEDGERS:
            rates[name].append(throughput(commands, name))
        print(json.dumps({"run": run + 1, **{k: round(v[-1]) for k, v in rates.items()}}), flush=True)
    lat = {name: latencies(commands, name) for name in LEDGERS}
    med = {name: statistics.median(v) for name, v in rates.items()}
    ratios = [c / n for c, n in zip(rates["funds-checks"], rates["no-funds-checks"], strict=True)]
    print()
    print(f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"Command: python -m bench.engine_bench --ledger compare --commands {args.commands} --runs {args.runs}")
    print()
    print("| engine | commands/s, median of runs (min to max) | p50 / p99 / p99.9 µs | vs no ledger |")
    print("|---|---|---|---|")
    for name in LEDGERS:
        r, q = rates[name], lat[name]
        print(f"| {name} | {med[name]:,.0f} ({min(r):,.0f} to {max(r):,.0f}) | {q['p50']:.1f} / {q['p99']:.1f} / "
              f"{q['p99.9']:.1f} | {med[name] / med['none']:.2f} |")  # fmt: skip
    print()
    print(f"funds checks on / off, same round: median {statistics.median(ratios):.3f} "
          f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

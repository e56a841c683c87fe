"""The engine's floor: how fast CPython on this machine can go through the standard mix doing almost nothing.

Why: the engine target (300,000 commands/s) is a figure for these machines, so it is worth knowing what the
interpreter itself allows. This replays the *same* seeded command stream as ``bench/engine_bench.py`` through
"bones": the least any engine must do per command, with the cheapest idioms, and none of the rest.

* a new order: one slotted order record, registered by id and by (owner, ClOrdID), an acknowledgement event and a
  price-level change event (plain tuples), the level's total and count updated; a marketable order is acknowledged
  and expired without matching (so no trade is ever produced, which only makes the floor faster);
* a cancel: lookup, unlink from its level (an insertion-ordered dict: O(1) FIFO removal), two tuple events;
* a replace: a cancel plus an add.

No validation, no sorted price levels, no best-price lookup, no matching, no self-trade checks, no statistics, no
typed events. Anything a real engine adds costs on top of this, so the floor's rate is an upper bound for any
pure-Python engine with per-order records on this machine.

    python -m bench.engine_floor --commands 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time

from bench.engine_bench import FREEZE_EVERY, standard_mix
from engine import CancelOrder, Command, NewOrder, ReplaceOrder, TimeInForce

RESTING = (TimeInForce.DAY, TimeInForce.GTC)


class Bones:
    __slots__ = ("clordid", "key", "leaves", "order_id", "owner", "price", "side")

    def __init__(self, order_id: int, owner: str, clordid: str, side: int, price: int, leaves: int) -> None:
        self.order_id = order_id
        self.owner = owner
        self.clordid = clordid
        self.side = side
        self.price = price
        self.leaves = leaves
        self.key = (owner, clordid)


def replay(commands: list[Command]) -> float:
    """Commands per second through the bones."""
    by_clordid: dict[tuple[str, str], Bones] = {}
    by_id: dict[int, Bones] = {}
    levels: dict[tuple[int, int | None], list[object]] = {}  # (side, price) -> [qty, count, {id: order}]
    next_id = 0
    gc.collect()
    t0 = time.perf_counter()
    for i, cmd in enumerate(commands):
        events: list[tuple[object, ...]] = []
        kind = type(cmd)
        if kind is NewOrder or kind is ReplaceOrder:
            if kind is ReplaceOrder:
                old = by_clordid.get((cmd.owner, cmd.orig_clordid))
                if old is not None and old.leaves:
                    level = levels[(old.side, old.price)]
                    del level[2][old.order_id]
                    level[0] -= old.leaves
                    level[1] -= 1
                    old.leaves = 0
                    events.append(("md", old.side, old.price, level[0], level[1]))
            next_id += 1
            order = Bones(next_id, cmd.owner, cmd.clordid, cmd.side, cmd.price, cmd.qty)
            by_id[next_id] = order
            by_clordid[order.key] = order
            events.append(("ack", next_id, cmd.clordid, cmd.qty))
            if kind is NewOrder and cmd.tif not in RESTING:  # IOC/FOK: never rests here
                order.leaves = 0
                events.append(("expired", next_id))
            else:
                level = levels.get((order.side, order.price))
                if level is None:
                    level = levels[(order.side, order.price)] = [0, 0, {}]
                level[2][next_id] = order
                level[0] += order.leaves
                level[1] += 1
                events.append(("md", order.side, order.price, level[0], level[1]))
        elif kind is CancelOrder:
            found = by_clordid.get((cmd.owner, cmd.orig_clordid))
            if found is None or not found.leaves:
                events.append(("cxl-reject", cmd.clordid))
            else:
                level = levels[(found.side, found.price)]
                del level[2][found.order_id]
                level[0] -= found.leaves
                level[1] -= 1
                found.leaves = 0
                events.append(("cancelled", found.order_id, cmd.clordid))
                events.append(("md", found.side, found.price, level[0], level[1]))
        if not i % FREEZE_EVERY:
            gc.freeze()
    rate = len(commands) / (time.perf_counter() - t0)
    gc.unfreeze()
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    commands = standard_mix(args.commands, args.seed)
    rates = [replay(commands) for _ in range(args.runs)]
    print(json.dumps({
        "bench": "engine_floor", "python": platform.python_version(), "commands": args.commands,
        "runs": [round(r) for r in rates], "median": round(statistics.median(rates)),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
